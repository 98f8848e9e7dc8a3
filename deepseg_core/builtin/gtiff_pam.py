"""Class names of a GeoTIFF in the form GDAL and QGIS read: its ``.aux.xml`` sidecar.

A TIFF has no place for category names or a raster attribute table, so GDAL keeps them in
the PAM sidecar ``<name>.aux.xml``: band 1 gets ``CategoryNames`` (index = pixel value) and a
thematic ``GDALRasterAttributeTable`` with Value, Red, Green, Blue, Alpha and ClassName
columns. The sidecar is part of the output: :mod:`deepseg_core.io.sidecars` moves it with the
raster through its temporary name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from ..contracts.raster import RasterInfo
from ..io.atomic import replacing

# GDALRATFieldType and GDALRATFieldUsage codes (gdal.h)
INTEGER, REAL, STRING = 0, 1, 2
ROWS_HERE = "rows-follow"  # placeholder row replaced by the streamed rows
USAGE = {"Generic": 0, "Name": 2, "MinMax": 5, "Red": 6, "Green": 7, "Blue": 8, "Alpha": 9}


StrPath = str | PathLike[str]


def sidecar_path(path: StrPath) -> Path:
    """The PAM sidecar GDAL reads beside ``path``."""
    return Path(f"{path}.aux.xml")


def attribute_rows(info: RasterInfo) -> list[tuple[int, tuple[int, int, int, int], str]]:
    """(value, rgba, class name) for each value 0..n-1 that has a colour or a name."""
    names = list(info.class_names or ())
    colours = {int(k): _rgba(c) for k, c in (info.colormap or {}).items()}
    n = max(len(names), max(colours, default=-1) + 1)
    return [(value, colours.get(value, (0, 0, 0, 0)), names[value] if value < len(names) else "")
            for value in range(n)]


def _rgba(colour: Sequence[int]) -> tuple[int, int, int, int]:
    """A colour table entry as (r, g, b, a), opaque where it has no alpha."""
    r, g, b, *alpha = (int(v) for v in colour)
    return r, g, b, alpha[0] if alpha else 255


def _field(table: ET.Element, index: int, name: str, kind: int, usage: str) -> None:
    field = ET.SubElement(table, "FieldDefn", index=str(index))
    ET.SubElement(field, "Name").text = name
    ET.SubElement(field, "Type").text = str(kind)
    ET.SubElement(field, "Usage").text = str(USAGE[usage])


def band_element(info: RasterInfo) -> ET.Element:
    """``<PAMRasterBand band="1">`` with the category names and the attribute table."""
    band = ET.Element("PAMRasterBand", band="1")
    rows = attribute_rows(info)
    if info.class_names:
        categories = ET.SubElement(band, "CategoryNames")
        for _, _, name in rows:
            ET.SubElement(categories, "Category").text = name
    table = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    columns = [("Value", INTEGER, "MinMax"), ("Red", INTEGER, "Red"),
               ("Green", INTEGER, "Green"), ("Blue", INTEGER, "Blue"),
               ("Alpha", INTEGER, "Alpha"), ("ClassName", STRING, "Name")]
    for i, (name, kind, usage) in enumerate(columns):
        _field(table, i, name, kind, usage)
    for i, (value, rgba, name) in enumerate(rows):
        row = ET.SubElement(table, "Row", index=str(i))
        for cell in (value, *rgba, name):
            ET.SubElement(row, "F").text = str(cell)
    return band


def table_element(columns: Mapping[str, np.ndarray]) -> ET.Element:
    """The field definitions of a thematic ``GDALRasterAttributeTable`` of ``{name: values}``
    (rows are streamed by :func:`write_table_sidecar`); ``ClassName`` gets usage Name."""
    table = ET.Element("GDALRasterAttributeTable", tableType="thematic")
    for i, (name, values) in enumerate(columns.items()):
        kind = {"i": INTEGER, "u": INTEGER, "b": INTEGER, "f": REAL}.get(
            np.asarray(values).dtype.kind, STRING)
        usage = {"ClassName": "Name", "Value": "MinMax", "instance_id": "MinMax"}.get(name)
        _field(table, i, str(name), kind, usage or "Generic")
    ET.SubElement(table, "Row", index=ROWS_HERE)
    return table


def _rows(columns: Mapping[str, np.ndarray]) -> Iterator[str]:
    arrays = [np.asarray(v) for v in columns.values()]
    for r in range(max((len(v) for v in arrays), default=0)):
        cells = "".join(f"<F>{escape(str(v[r])) if r < len(v) else ''}</F>" for v in arrays)
        yield f'<Row index="{r}">{cells}</Row>\n'


def write_table_sidecar(path: StrPath, columns: Mapping[str, np.ndarray]) -> Path:
    """Put ``columns`` as band 1's attribute table into ``path.aux.xml`` (other content kept).
    Rows are written as a stream: an instance raster's table has a row per instance."""
    target = _update_band1(path, [table_element(columns)])
    text = target.read_text(encoding="utf-8")
    marker = f'<Row index="{ROWS_HERE}" />'
    head, _, tail = text.partition(marker)
    with replacing(target) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.write(head)
        out.writelines(_rows(columns))
        out.write(tail)
    return target


def write_class_sidecar(path: StrPath, info: RasterInfo) -> Path | None:
    """Write (or update) ``path.aux.xml`` with band 1's class names; None when there are none.

    A sidecar GDAL wrote itself is kept, only band 1's names and table are replaced. The
    file is written beside, then renamed, so a reader never sees half of it.
    """
    if not info.class_names:
        return None
    return _update_band1(path, list(band_element(info)))


def _update_band1(path: StrPath, elements: list[ET.Element]) -> Path:
    """Replace band 1's CategoryNames/attribute table in ``path.aux.xml`` by ``elements``."""
    target = sidecar_path(path)
    root = None
    if target.exists():
        try:
            root = ET.parse(target).getroot()
        except ET.ParseError:
            root = None  # not GDAL's: ours replaces it
    if root is None or root.tag != "PAMDataset":
        root = ET.Element("PAMDataset")
    replaced = {e.tag for e in elements}
    new = ET.Element("PAMRasterBand", band="1")
    new.extend(elements)
    for old in root.findall("PAMRasterBand"):
        if old.get("band") == "1":
            for child in list(old):
                if child.tag not in replaced:
                    new.append(child)
            root.remove(old)
    root.insert(0, new)
    ET.indent(root)
    with replacing(target) as tmp:  # no temporary left behind when the disk is full
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=False)
    return target

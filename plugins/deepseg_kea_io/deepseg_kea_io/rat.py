"""The KEA raster attribute table (``/BANDk/ATT``): columns, colour table, class names."""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from .layout import STRING, filters, read_values, text, to_bytes, write_values

KINDS = ("BOOL", "INT", "FLOAT", "STRING")  # order of the counts in ATT/HEADER/SIZE[1:]
DISK_TYPES = {"BOOL": np.dtype("<i1"), "INT": np.dtype("<i8"), "FLOAT": np.dtype("<f8"),
              "STRING": np.dtype([("STRING", STRING)])}
FIELD_TYPE = np.dtype({"names": ["NAME", "INDEX", "USAGE", "COLNUM"],
                       "formats": [STRING, "<u4", STRING, "<u4"],
                       "offsets": [0, 8, 16, 24], "itemsize": 32})
COLOUR_USAGES = ("Red", "Green", "Blue", "Alpha")
CLASS_NAME_COLUMN = "ClassName"
CLASS_NAME_ALIASES = ("classname", "class_name", "cls_name", "class_names", "name", "class")
USAGE_BY_NAME = {"Red": "Red", "Green": "Green", "Blue": "Blue", "Alpha": "Alpha",
                 "Histogram": "PixelCount", CLASS_NAME_COLUMN: "Name"}


@dataclass(frozen=True)
class Column:
    """One attribute-table column: name, GDAL usage string and one value per row."""

    name: str
    usage: str
    values: np.ndarray


def kind_of(values: np.ndarray) -> str:
    """The KEA column type (BOOL, INT, FLOAT or STRING) that stores ``values``."""
    kind = np.asarray(values).dtype.kind
    return {"b": "BOOL", "i": "INT", "u": "INT", "f": "FLOAT"}.get(kind, "STRING")


def read_columns(att: h5py.Group) -> list[Column]:
    """All columns of an ``ATT`` group, ordered by their COLNUM."""
    header = att["HEADER"]
    size = read_values(header, "SIZE", np.uint64)
    if size is None or len(size) < 5 or not size[0]:
        return []
    nrows, found = int(size[0]), []
    for i, kind in enumerate(KINDS):
        if not size[i + 1] or f"{kind}_FIELDS" not in header:
            continue
        data = att["DATA"][kind]
        for rec in header[f"{kind}_FIELDS"][()][:int(size[i + 1])]:
            index = int(rec["INDEX"])
            if index >= data.shape[1]:
                raise ValueError(f"{kind} column {text(rec['NAME'])!r} has INDEX {index} beyond "
                                 f"the {data.shape[1]} stored columns")
            found.append((int(rec["COLNUM"]), Column(text(rec["NAME"]), text(rec["USAGE"]),
                                                     _column(data, kind, index, nrows))))
    return [col for _, col in sorted(found, key=lambda pair: pair[0])]


def _column(data: h5py.Dataset, kind: str, index: int, nrows: int) -> np.ndarray:
    rows = min(nrows, data.shape[0])
    if kind == "STRING":
        raw = data[:rows, index]["STRING"]
        return np.array([text(v) for v in raw], dtype=object)
    values = data[:rows, index]
    return values.astype(bool) if kind == "BOOL" else values


def write_columns(att: h5py.Group, columns: list[Column], chunk: int, deflate: int) -> None:
    """Write ``columns`` (COLNUM = list position) as a KEA attribute table into ``att``."""
    header = att.require_group("HEADER")
    data = att.require_group("DATA")
    att.require_group("NEIGHBOURS")
    nrows = max((len(c.values) for c in columns), default=0)
    by_kind = {kind: [(n, c) for n, c in enumerate(columns) if kind_of(c.values) == kind]
               for kind in KINDS}
    write_values(header, "SIZE", [nrows] + [len(by_kind[k]) for k in KINDS], "<u8")
    write_values(header, "CHUNKSIZE", [chunk if columns else 0], "<u8")
    for kind, cols in by_kind.items():
        for group, name in ((header, f"{kind}_FIELDS"), (data, kind)):
            if name in group:
                del group[name]
        if not cols:
            continue
        fields = np.array([(to_bytes(c.name), i, to_bytes(c.usage), n)
                           for i, (n, c) in enumerate(cols)], dtype=FIELD_TYPE)
        header.create_dataset(f"{kind}_FIELDS", data=fields, chunks=(chunk,), maxshape=(None,),
                              **filters(deflate))
        table = np.zeros((nrows, len(cols)), dtype=DISK_TYPES[kind])
        for i, (_, c) in enumerate(cols):
            values = _padded(c.values, nrows)
            if kind == "STRING":
                table["STRING"][:, i] = [to_bytes(v) for v in values]
            else:
                table[:, i] = values
        data.create_dataset(kind, data=table, chunks=(chunk, 1), maxshape=(None, None),
                            **filters(deflate))


def _padded(values, nrows: int) -> np.ndarray:
    values = np.asarray(values)
    if len(values) == nrows:
        return values
    strings = kind_of(values) == "STRING"
    out = np.full(nrows, "" if strings else 0, dtype=object if strings else values.dtype)
    out[:len(values)] = values
    return out


def colour_table(columns: list[Column]) -> dict[int, tuple[int, int, int, int]] | None:
    """GDAL's rule: a colour table exists iff INT columns with usages Red, Green, Blue, Alpha do."""
    ints = {c.usage: c.values for c in columns if kind_of(c.values) == "INT"}
    if not all(u in ints for u in COLOUR_USAGES):
        return None
    rgba = np.stack([np.clip(ints[u], 0, 255) for u in COLOUR_USAGES], axis=1)
    return {i: tuple(int(v) for v in row) for i, row in enumerate(rgba)}


def class_names(columns: list[Column]) -> tuple[str, ...] | None:
    """Class names: the STRING column with usage Name, else one with a usual class-name name."""
    strings = [c for c in columns if kind_of(c.values) == "STRING"]
    for col in strings:
        if col.usage == "Name":
            return tuple(str(v) for v in col.values)
    for col in strings:
        if col.name.lower() in CLASS_NAME_ALIASES:
            return tuple(str(v) for v in col.values)
    return None


def trimmed(colormap, names) -> tuple[dict | None, tuple[str, ...] | None]:
    """Class names without trailing empty ones, and the colour table without trailing black
    rows beyond the last named class (attribute tables are often padded to 256 rows)."""
    names = tuple(names or ())
    while names and not names[-1]:
        names = names[:-1]
    if colormap:
        last = max((v for v, c in colormap.items() if tuple(c[:3]) != (0, 0, 0)), default=-1)
        last = max(last, len(names) - 1)
        colormap = {v: c for v, c in colormap.items() if v <= last} or None
    return colormap, names or None


def band_columns(colormap, names, histogram, extra: dict | None) -> list[Column]:
    """Band 1's columns: Histogram, Red, Green, Blue, Alpha, ClassName, then ``extra`` ones
    (an ``extra`` column replaces a generated one of the same name, keeping its position)."""
    columns: list[Column] = []
    if histogram is not None:
        columns.append(Column("Histogram", "PixelCount", np.asarray(histogram, dtype="<f8")))
    if colormap:
        rows = max(int(k) for k in colormap) + 1
        rgba = np.zeros((rows, 4), dtype="<i8")
        for value, colour in colormap.items():
            rgba[int(value)] = tuple(colour) + (255,) * (4 - len(colour))
        columns += [Column(u, u, rgba[:, i]) for i, u in enumerate(COLOUR_USAGES)]
    if names:
        columns.append(Column(CLASS_NAME_COLUMN, "Name",
                              np.array([str(n) for n in names], dtype=object)))
    for name, values in (extra or {}).items():
        values = np.asarray(values)
        values = values.astype(object) if kind_of(values) == "STRING" else values
        column = Column(str(name), USAGE_BY_NAME.get(str(name), "Generic"), values)
        at = [i for i, c in enumerate(columns) if c.name == column.name]
        if at:
            columns[at[0]] = column
        else:
            columns.append(column)
    return columns

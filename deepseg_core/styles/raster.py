"""The QGIS style of a class raster or error map: ``<name>.qml`` beside ``<name>.<ext>``.

QGIS looks for a style of the raster's own name with the suffix ``.qml`` when it opens a file
(``QgsMapLayer.loadDefaultStyle``), for any format (GeoTIFF, COG, KEA). The style lists the
classes that exist (not the 256 entries of a padded colour table) with their colours and
names; the nodata value is left out, so QGIS draws it transparent. The sidecar is written
atomically and read back, and moves with its raster (:mod:`deepseg_core.io.sidecars`).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeepSegError
from ..io.atomic import write_text
from ..io.gdalpaths import is_virtual
from .qml import Entry, paletted_raster

if TYPE_CHECKING:
    from _typeshed import StrPath

    from ..contracts.raster import RasterInfo


def style_path(path: StrPath) -> Path:
    """The style QGIS applies to the raster at ``path``: the same name with ``.qml``."""
    return Path(path).with_suffix(".qml")


def class_entries(info: RasterInfo) -> list[Entry]:
    """A legend entry per class value of ``info`` (named or coloured), nodata left out."""
    names = list(info.class_names or ())
    colours = {int(v): tuple(int(c) for c in rgba) for v, rgba in (info.colormap or {}).items()}
    nodata = info.nodata
    skip = None if nodata is None or math.isnan(nodata) else int(nodata)
    values = sorted(set(range(len(names))) | set(colours) if names else set())
    entries = []
    for value in values:
        if value == skip:
            continue
        r, g, b, *a = colours.get(value, (128, 128, 128, 255))
        entries.append(Entry(value, (r, g, b, a[0] if a else 255),
                             names[value] if value < len(names) and names[value] else str(value)))
    return entries


def write_raster_style(path: StrPath, info: RasterInfo) -> Path | None:
    """Write the style of the class raster at ``path`` (None where it has no class names, or
    is no local file); it is read back before it counts as written."""
    if not info.class_names or is_virtual(path):
        return None
    entries = class_entries(info)
    target = write_text(style_path(path), paletted_raster(entries))
    found = palette(target)
    if found != [(e.value, e.rgba, e.label) for e in entries]:
        raise DeepSegError(f"{target}: the style does not read back as written; the disk may "
                           "be full or failing")
    return target


def palette(qml: StrPath) -> list[tuple[int, tuple[int, int, int, int], str]]:
    """(value, rgba, label) of each palette entry of a raster style file."""
    try:
        root = ET.parse(qml).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DeepSegError(f"{qml}: not a readable QGIS style ({exc})") from None
    out = []
    for e in root.iter("paletteEntry"):
        colour = e.get("color", "#000000").lstrip("#")
        r, g, b = (int(colour[i:i + 2], 16) for i in (0, 2, 4))
        out.append((int(e.get("value", "0")), (r, g, b, int(e.get("alpha", "255"))),
                    e.get("label", "")))
    return out

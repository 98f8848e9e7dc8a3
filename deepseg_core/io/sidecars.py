"""A raster output and its sidecar files move and disappear together: the ``.aux.xml`` GDAL keeps
beside it (class names, attribute table) and the ``.qml`` style QGIS applies to it
(:mod:`deepseg_core.styles.raster`: ``<name>.qml`` beside ``<name>.tif``). A GeoPackage keeps
its styles inside, so the ``.qml`` of the same name is never its sidecar."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import StrPath

SIDECAR_SUFFIXES = (".aux.xml",)
STYLE_SUFFIX = ".qml"  # replaces the raster's suffix, as QGIS looks for it
OWN_STYLES = (".gpkg",)  # formats that hold their styles inside


def sidecars(path: StrPath) -> list[Path]:
    """The sidecar paths of ``path`` (existing or not)."""
    found = [Path(f"{path}{suffix}") for suffix in SIDECAR_SUFFIXES]
    if Path(path).suffix.lower() not in OWN_STYLES:
        found.append(Path(path).with_suffix(STYLE_SUFFIX))
    return found


def replace_output(tmp: StrPath, out: StrPath) -> None:
    """Rename ``tmp`` to ``out`` with its sidecars; a sidecar of an older ``out`` that ``tmp``
    lacks is removed. Sidecars go first: the raster under its final name means complete."""
    for src, dst in zip(sidecars(tmp), sidecars(out)):
        if src.exists():
            os.replace(src, dst)
        else:
            dst.unlink(missing_ok=True)
    os.replace(tmp, out)


def remove_output(path: StrPath) -> None:
    """Remove ``path`` and its sidecars where they exist."""
    Path(path).unlink(missing_ok=True)
    for side in sidecars(path):
        side.unlink(missing_ok=True)

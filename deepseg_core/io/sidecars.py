"""A raster output and the sidecar files GDAL keeps beside it (``.aux.xml``: class names,
attribute table) move and disappear together."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import StrPath

SIDECAR_SUFFIXES = (".aux.xml",)


def sidecars(path: StrPath) -> list[Path]:
    """The sidecar paths of ``path`` (existing or not)."""
    return [Path(f"{path}{suffix}") for suffix in SIDECAR_SUFFIXES]


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

"""Built-in reader for everything GDAL opens, and GeoTIFF/COG writers, through rasterio.

Class names live in band 1's tag ``CLASS_NAMES`` (a JSON list) and a thematic band carries
``LAYER_TYPE=thematic``: GDAL category names are not reachable through rasterio.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window as RioWindow

from deepseg_core import hookimpl
from deepseg_core.errors import DeepSegError

from ..contracts.raster import RasterInfo, SourceBase, Window
from .gtiff_write import CLASS_NAMES_TAG, LAYER_TYPE_TAG, CogWriter, GTiffWriter, quiet, reason

if TYPE_CHECKING:
    from _typeshed import StrPath

    from ..plugins.registry import Registry

__all__ = ["GdalReader", "GdalSource", "GTiffWriter", "CogWriter"]

# Windows stream through once (twice where tiles overlap): GDAL's default block cache of 5 %
# of RAM would only grow with the raster. A user's own GDAL_CACHEMAX is kept.
os.environ.setdefault("GDAL_CACHEMAX", "64")


def _open(path: StrPath) -> Any:  # a rasterio dataset
    """rasterio.open, quietly: no georeference is reported as info.crs None instead."""
    with quiet():
        return rasterio.open(str(path))


def _colormap(ds: Any, keep: int) -> dict[int, tuple[int, int, int, int]] | None:
    """Band 1's colour table without the unset black entries GDAL pads it with."""
    try:
        cmap = ds.colormap(1)
    except ValueError:  # rasterio's way of saying "no colour table"
        return None
    last = max((v for v, rgba in cmap.items() if tuple(rgba[:3]) != (0, 0, 0)), default=-1)
    last = max(last, keep - 1)
    return {int(v): (int(rgba[0]), int(rgba[1]), int(rgba[2]), int(rgba[3]))
            for v, rgba in cmap.items() if v <= last} or None


def _class_names(tags: dict[str, str]) -> tuple[str, ...] | None:
    try:
        names = json.loads(tags[CLASS_NAMES_TAG])
    except (KeyError, ValueError):
        return None
    return tuple(str(n) for n in names) if isinstance(names, list) else None


def _info(ds: Any) -> RasterInfo:
    """RasterInfo of an open rasterio dataset."""
    band_tags = ds.tags(1) if ds.count else {}
    class_names = _class_names(band_tags)
    colormap = _colormap(ds, len(class_names or ()))
    thematic = band_tags.get(LAYER_TYPE_TAG, "").lower() == "thematic" or colormap is not None
    return RasterInfo(
        width=ds.width, height=ds.height, count=ds.count,
        dtype=np.result_type(*ds.dtypes).name if ds.count else "uint8",
        crs=ds.crs.to_wkt() if ds.crs else None, transform=ds.transform, nodata=ds.nodata,
        descriptions=tuple(ds.descriptions), colormap=colormap, class_names=class_names,
        thematic=thematic, metadata=dict(ds.tags()))


class GdalSource(SourceBase):
    """An open raster read through rasterio; windows reaching outside it are padded."""

    def __init__(self, path: StrPath) -> None:
        self.path = Path(path)
        try:
            self._ds = _open(path)
        except (RasterioError, OSError) as exc:
            raise DeepSegError(f"{path}: not a readable raster: {reason(exc)}") from exc
        try:
            self.info = _info(self._ds)
        except Exception as exc:
            self._ds.close()
            raise DeepSegError(f"{path}: cannot read the raster's header: {reason(exc)}") from exc

    def read(self, window: Window | None = None, bands: list[int] | None = None) -> np.ndarray:
        """Pixels ``(bands, rows, cols)`` of ``window``; outside the raster: nodata (or 0)."""
        info = self.info
        window = window or Window(0, 0, info.height, info.width)
        bands = list(range(1, info.count + 1)) if bands is None else [int(b) for b in bands]
        missing = [b for b in bands if not 1 <= b <= info.count]
        if missing:
            raise DeepSegError(f"{self.path}: no band {missing[0]} (the raster has {info.count})")
        if window.height < 0 or window.width < 0:
            raise DeepSegError(f"{self.path}: window {window} has a negative size")
        inner = window.clip(info.height, info.width)
        try:
            if inner == window:
                return self._read(bands, inner)
            fill = info.nodata if info.nodata is not None else 0
            out = np.full((len(bands), window.height, window.width), fill, dtype=info.dtype)
            if inner.height and inner.width:
                placed = inner.shift(-window.row_off, -window.col_off)
                rows, cols = placed.slices
                out[:, rows, cols] = self._read(bands, inner)
            return out
        except Exception as exc:  # GDAL raises several unrelated types for a damaged file
            raise DeepSegError(f"{self.path}: cannot read pixels of {window} (truncated or "
                               f"corrupt file?): {reason(exc)}") from exc

    def _read(self, bands: list[int], window: Window) -> np.ndarray:
        rio = RioWindow(window.col_off, window.row_off, window.width, window.height)
        return self._ds.read(bands, window=rio, out_dtype=self.info.dtype)

    def close(self) -> None:
        """Release the file."""
        self._ds.close()



class GdalReader:
    """Catch-all reader: anything GDAL can open (GeoTIFF, COG, JP2, VRT, ...)."""

    extensions: tuple[str, ...] = ()

    def can_open(self, path: StrPath) -> bool:
        """True when GDAL recognises the file (a missing or non-raster file: False)."""
        text = str(path)
        if "://" not in text and not text.startswith("/vsi") and not Path(text).exists():
            return False
        try:
            with _open(text):
                return True
        except (RasterioError, OSError, ValueError):
            return False

    def open(self, path: StrPath) -> GdalSource:
        """Open ``path`` for windowed reads."""
        return GdalSource(path)


@hookimpl(tryfirst=True)  # built-ins register first: others may override
def deepseg_register_readers(registry: Registry) -> None:
    registry.add_reader("gdal", GdalReader())


@hookimpl(tryfirst=True)  # built-ins register first: others may override
def deepseg_register_writers(registry: Registry) -> None:
    registry.add_writer("gtiff", GTiffWriter())
    registry.add_writer("cog", CogWriter())

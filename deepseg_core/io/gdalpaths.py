"""Inputs that are not local files but that GDAL opens: its virtual file systems (``/vsizip/``,
``/vsicurl/``, ``/vsis3/``, ``/vsigs/``, ...) and URLs (``https://``, ``s3://``, ``zip://``)."""

from __future__ import annotations

import contextlib
import warnings


def is_virtual(path: object) -> bool:
    """True for a GDAL virtual file system path or a URL (never resolved against a folder)."""
    text = str(path)
    return text.startswith("/vsi") or "://" in text


def gdal_open_problem(path: object) -> str | None:
    """None when GDAL opens ``path`` as a raster or a vector dataset, else GDAL's reason."""
    import pyogrio
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with contextlib.closing(rasterio.open(str(path))):
                return None
    except (RasterioError, OSError, ValueError) as exc:
        raster_reason = " ".join(str(exc).split())
    try:
        pyogrio.list_layers(str(path))
        return None
    except Exception:  # pyogrio raises DataSourceError and others: the raster reason says it
        return raster_reason or "not a raster or vector dataset GDAL can open"

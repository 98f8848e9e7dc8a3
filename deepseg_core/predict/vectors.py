"""Vector output of a semantic prediction: class polygons in a GeoPackage, built block by block."""

from __future__ import annotations

import os
from pathlib import Path

from ..raster import RasterInfo
from .assemble import temporary


def vectorize_output(exp, registry, raster: Path, info: RasterInfo) -> Path:
    """Polygonize the finished class raster into ``<raster stem>.gpkg`` (streaming)."""
    from ..geo.vectorize import vectorize_raster

    settings = exp.predict.vectorize
    gpkg = raster.with_suffix(".gpkg")
    tmp = temporary(gpkg)
    tmp.unlink(missing_ok=True)
    try:
        with registry.reader_for(raster).open(raster) as src:
            vectorize_raster(lambda window: src.read(window), info, tmp, exp.class_names,
                             skip=settings.skip_classes, min_area=settings.min_area,
                             simplify=settings.simplify)
        os.replace(tmp, gpkg)
    finally:
        tmp.unlink(missing_ok=True)
    return gpkg

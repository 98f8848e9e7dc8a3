"""Vector output of a semantic prediction: class polygons in a GeoPackage, built block by block."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ...contracts.raster import RasterInfo
from ...errors import io_error
from ...io.atomic import fsync_file
from .assemble import incomplete

if TYPE_CHECKING:
    from ...config.sections import Vectorize
    from ...contracts.raster import RasterReader


def vectorize_output(reader: RasterReader, raster: Path, out: Path, info: RasterInfo,
                     class_names: Sequence[str], settings: Vectorize) -> Path:
    """Polygonize the class raster (written at ``raster``, to be published as ``out``) into
    the temporary of ``<out stem>.gpkg`` (streaming), with the layer's QGIS style (class
    colours and names); returns that temporary."""
    from ...geo.vectorize import vectorize_raster
    from ...styles.layers import class_polygons_style, write_layer_style

    gpkg = out.with_suffix(".gpkg")
    tmp = incomplete(gpkg)
    try:
        tmp.unlink(missing_ok=True)
        with reader.open(raster) as src:
            done = vectorize_raster(lambda window: src.read(window), info, tmp, class_names,
                                    skip=settings.skip_classes, min_area=settings.min_area,
                                    simplify=settings.simplify)
        style = class_polygons_style(class_names, info.colormap or {}, settings.skip_classes)
        write_layer_style(tmp, done["layer"], style, "DeepSeg: class colours and names")
        fsync_file(tmp)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise io_error(gpkg, exc, "cannot write the polygons") from None
        raise
    return tmp

"""Real DeepSeg outputs for the GIS interop tests: a prediction as GeoTIFF and KEA (with its
GeoPackage), and error maps with a known layout, all written by the registry's writers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.metrics.errormap import error_map
from deepseg_core.stages import predict
from deepseg_core.testing.rasters import write_in_windows
from tests.support.cli import deepseg
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, squares_scene

CLASSES = [{"name": "background", "color": "#000000"}, {"name": "a", "color": "#ff0000"},
           {"name": "b", "color": "#00ff00"}]
ERROR_SIZE = (48, 64)  # rows, cols of the error maps
WKT = CRS.from_epsg(2193).to_wkt()
TRANSFORM = Affine(0.5, 0, 1_750_000.25, 0, -0.5, 5_900_000.75)  # of the KEA test rasters


@dataclass
class Outputs:
    prediction_tif: Path
    prediction_kea: Path
    gpkg: Path
    errors_tif: Path
    errors_kea: Path
    error_codes: np.ndarray  # what the error maps hold
    error_colours: dict
    error_names: tuple


def error_layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth, prediction and validity in blocks of 16 x 16 px: every multi-class code and
    nodata appear in blocks of their own."""
    rows, cols = ERROR_SIZE
    block_r, block_c = np.indices(ERROR_SIZE) // 16
    truth = (block_r % 3).astype(np.uint8)
    pred = ((block_r + block_c) % 3).astype(np.uint8)
    valid = ~((block_r == 2) & (block_c == 3))  # one block is nodata (code 0)
    return truth, pred, valid


def write_error_maps(registry, folder: Path) -> tuple:
    """The multi-class error map of :func:`error_layout` as GeoTIFF and KEA."""
    truth, pred, valid = error_layout()
    names = [c["name"] for c in CLASSES]
    colours = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
    codes, colormap, legend = error_map(truth, pred, names, None, valid, 1, colours)
    info = RasterInfo(ERROR_SIZE[1], ERROR_SIZE[0], 1, str(codes.dtype),
                      CRS.from_epsg(2193).to_wkt(), Affine(2.0, 0, 1_750_000, 0, -2.0, 5_900_000),
                      0, ("errors",), colormap, tuple(legend), True)
    paths = []
    for name in ("errors.tif", "errors.kea"):
        path = folder / name
        with registry.writer_for(path).create(path, info) as sink:
            for r in range(0, ERROR_SIZE[0], 16):  # windows, as crossval writes tile cores
                sink.write(codes[None, r:r + 16], Window(r, 0, 16, ERROR_SIZE[1]))
        paths.append(path)
    return paths, codes, colormap, tuple(legend)


def make_outputs(registry, folder: Path) -> Outputs:
    """Predict a squares scene to GeoTIFF (+ GeoPackage) and, by the ``deepseg predict``
    command, to KEA with the same model; write the error maps."""
    img, _, _ = squares_scene(folder, size=96)
    model = {"name": "unet64", "filters": 4, "depth": 2}  # an installed plugin: the CLI has it
    exp = predict_experiment(folder, img, classes=CLASSES, model=model,
                             predict={"output": str(folder / "predictions" / "pred.tif"),
                                      "vectorize": {"enabled": True, "skip_classes": []}})
    save_untrained(exp, registry, img, seed=3)
    tif = predict.run(exp, registry)
    kea = folder / "predictions" / "pred.kea"
    exp_kea = predict_experiment(folder, img, classes=CLASSES, model=model,
                                 predict={"output": str(kea)})
    run = deepseg("predict", exp_kea.source, timeout=300)
    assert run.returncode == 0 and kea.is_file(), run.stderr[-3000:]
    (errors_tif, errors_kea), codes, colours, names = write_error_maps(registry, folder)
    return Outputs(tif, kea, tif.with_suffix(".gpkg"), errors_tif, errors_kea, codes, colours,
                   names)


def thematic_info(width, height, names=("unlabelled", "forest", "grass", "water")):
    colours = {0: (0, 0, 0, 255), 1: (34, 139, 34, 255), 2: (124, 252, 0, 200),
               3: (0, 0, 255, 255)}
    return RasterInfo(width, height, 1, "uint8", WKT, TRANSFORM, 255, ("classes",), colours,
                      names, True)


def write_kea(path, info, pixels, tile=37, **options):
    """Write ``pixels`` in ``tile`` windows (not aligned with the 256 px chunks)."""
    from deepseg_kea_io import KeaWriter

    return write_in_windows(KeaWriter(), path, info, pixels, tile, **options)


def predict_instances(tmp_path, registry, output):
    """An instance-id raster (and its GeoPackage) of blobs predicted by ``tinyblobs``."""
    import geopandas as gpd

    img, _, _ = squares_scene(tmp_path, size=96, nsquares=8, seed=4)
    exp = predict_experiment(tmp_path, img, model="tinyblobs", segmentation_type="instance",
                             tilesize=64, overlap=32,
                             classes=[{"name": "background"}, {"name": "blob"}],
                             predict={"output": output})
    save_untrained(exp, registry, img)
    out = predict.run(exp, registry)
    return out, gpd.read_file(out.with_suffix(".gpkg"))

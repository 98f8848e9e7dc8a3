"""Small synthetic georeferenced rasters and the experiment files over them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

CRS = "EPSG:2193"  # NZTM


def write_raster(path: Path, data: np.ndarray, transform=None, crs=CRS, nodata=None):
    """Write ``(bands, rows, cols)`` as a GeoTIFF."""
    import rasterio
    from affine import Affine

    transform = transform or Affine(0.5, 0, 1_750_000, 0, -0.5, 5_900_000)
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1],
                   count=data.shape[0], dtype=data.dtype, crs=crs, transform=transform,
                   nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def squares_scene(folder: Path, size=160, nbands=3, nsquares=12, seed=0, dtype="uint8",
                  name="scene", origin=(1_750_000, 5_900_000)):
    """Bright squares on dark noise, top-left corner at ``origin`` (x, y); returns (image path,
    labels gpkg path, class raster)."""
    import geopandas as gpd
    from affine import Affine
    from shapely.geometry import box

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = np.zeros((size, size), np.uint8)
    transform = Affine(0.5, 0, origin[0], 0, -0.5, origin[1])
    polys = []
    for _ in range(nsquares):
        h, w = rng.integers(8, 24, 2)
        r, c = rng.integers(0, size - h), rng.integers(0, size - w)
        truth[r:r + h, c:c + w] = 1
        x0, y0 = transform @ (c, r)
        x1, y1 = transform @ (c + w, r + h)
        polys.append(box(x0, y1, x1, y0))
    image = rng.normal(40, 10, (nbands, size, size))
    image[:, truth == 1] += 120
    image = np.clip(image, 0, 255).astype(dtype)
    img = write_raster(folder / f"{name}.tif", image, transform)
    frame = gpd.GeoDataFrame({"class": ["square"] * len(polys)}, geometry=polys, crs=CRS)
    gpkg = folder / f"{name}.gpkg"
    frame.to_file(gpkg, layer="squares", driver="GPKG")
    return img, gpkg, truth


def write_experiment(folder: Path, image, label_path, name="exp", **overrides) -> Path:
    """An experiment.yaml over a squares scene with tiny settings, updated by ``overrides``."""
    exp = {
        "name": name, "workdir": str(folder / "runs"), "tilesize": 32, "overlap": 8,
        "nbands": 3, "epochs": 2, "learning_rate": 0.01, "folds": 2,
        "images": [{"path": str(image)}],
        "labels": {"path": str(label_path), "class_field": "class"},
        "classes": [{"name": "background", "color": "#000000"},
                    {"name": "square", "color": "#ff0000", "value": "square"}],
        "model": {"name": "unet64", "filters": 4, "depth": 2},
        "training": {"batch_size": 8, "seed": 1},
        "augmentation": ["flips"],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(exp.get(key), dict):
            exp[key] = {**exp[key], **value}
        else:
            exp[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def labelled_scene(folder: Path, size=1280, nsquares=200, seed=0):
    """Noise with bright 16 px squares, labelled everywhere (a background polygon under the
    squares), so every tile of it is written to a store; returns (image path, labels gpkg)."""
    import geopandas as gpd
    from affine import Affine
    from shapely.geometry import box

    rng = np.random.default_rng(seed)
    transform = Affine(0.5, 0, 1_750_000, 0, -0.5, 5_900_000)
    image = rng.normal(40, 10, (3, size, size))
    shapes, classes = [box(*(transform @ (0, size)), *(transform @ (size, 0)))], ["background"]
    for _ in range(nsquares):
        r, c = rng.integers(0, size - 24, 2)
        image[:, r:r + 16, c:c + 16] += 120
        x0, y1 = transform @ (c, r + 16)
        x1, y0 = transform @ (c + 16, r)
        shapes.append(box(x0, y1, x1, y0))
        classes.append("square")
    img = write_raster(folder / "scene.tif", np.clip(image, 0, 255).astype("uint8"), transform)
    gpkg = folder / "scene.gpkg"
    gpd.GeoDataFrame({"class": classes}, geometry=shapes, crs=CRS).to_file(gpkg, driver="GPKG")
    return img, gpkg


def predict_experiment(folder: Path, image, **overrides):
    """A loaded experiment for predicting ``image`` with a test model (``tinyfcn``, 32 px
    tiles, three classes; no labels needed), updated by ``overrides``."""
    from deepseg_core.config import load_experiment

    labels = folder / "unused.gpkg"
    labels.write_text("")
    settings = dict(model="tinyfcn", tilesize=32, overlap=12, nbands=3,
                    labels={"path": str(labels)},
                    classes=[{"name": "background", "color": "#000000"},
                             {"name": "a", "color": "#ff0000"}, {"name": "b", "color": "#00ff00"}],
                    training={"batch_size": 5})
    settings.update(overrides)
    return load_experiment(write_experiment(folder, image, labels, **settings))

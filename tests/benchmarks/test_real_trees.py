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
        assert out.crs.to_epsg() == 32612 and out.res == (0.1, 0.1) and out.count == 3
    crowns = gpd.read_file(item["gpkg"])
    assert len(crowns) == 61 and set(crowns["class"]) == {"tree"}
    # each crown is its box's inscribed ellipse: same bounds, area pi/4 of the box's
    inv = ~item["transform"]
    for (x0, y0, x1, y1), geom, box in zip(crowns.bounds.to_numpy(), crowns.geometry, boxes):
        (c0, r0), (c1, r1) = inv @ (x0, y1), inv @ (x1, y0)
        assert np.allclose([c0, r0, c1, r1], box, atol=0.05)
        assert geom.area == pytest.approx(np.pi / 4 * (x1 - x0) * (y1 - y0), rel=0.01)

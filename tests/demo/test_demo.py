"""`deepseg demo`: the generated scene (georeference, exact labels, determinism) and the whole
demo end to end on a small scene (every output, accuracy clearly above chance)."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely

from deepseg_core.demo.command import MARKER, prepare_workdir
from deepseg_core.demo.scene import CLASSES, make_scene
from deepseg_core.errors import DeepSegError
from deepseg_core.stages.crossval.stage import error_counts_total
from tests.support.cli import invoke

NAMES = [name for name, _ in CLASSES]


def read_scene(scene):
    with rasterio.open(scene.image) as src:
        image, profile, descriptions = src.read(), src.profile, src.descriptions
        res, bounds = src.res, src.bounds
    labels = gpd.read_file(scene.labels)
    return image, profile, descriptions, res, bounds, labels


def test_the_scene_is_georeferenced_labelled_and_deterministic(tmp_path):
    scene = make_scene(tmp_path / "a", size=256, seed=3)
    image, profile, descriptions, res, bounds, labels = read_scene(scene)
    assert profile["crs"].to_epsg() == 2193 and res == (0.5, 0.5)
    assert image.shape == (4, 256, 256) and image.dtype == np.uint8
    assert profile["tiled"] and descriptions == ("red", "green", "blue", "nir")
    assert labels.crs.to_epsg() == 2193 and "class" in labels.columns
    assert set(labels["class"]) == {"tree", "building", "road", "water"}
    assert scene.counts == labels["class"].value_counts().to_dict()
    assert shapely.is_valid(labels.geometry.values).all()
    assert (labels.geom_type == "Polygon").all()
    assert shapely.box(*bounds).buffer(1e-6).contains(shapely.union_all(labels.geometry.values))
    crowns = labels[labels["class"] == "tree"].geometry.area
    assert crowns.max() <= np.pi * 8**2 and crowns.median() >= np.pi * 2**2 * 0.9

    # the image shows the labels: vegetation bright in NIR, water dark in NIR
    truth = rasterio.features.rasterize(
        zip(labels.geometry, labels["class"].map(NAMES.index)), (256, 256),
        transform=profile["transform"], dtype="uint8")
    nir = {name: image[3][truth == NAMES.index(name)].mean() for name in NAMES}
    assert nir["tree"] > nir["background"] > nir["road"] > nir["water"] and nir["water"] < 30

    again = make_scene(tmp_path / "b", size=256, seed=3)
    other = make_scene(tmp_path / "c", size=256, seed=4)
    image2, _, _, _, _, labels2 = read_scene(again)
    assert np.array_equal(image, image2)
    assert shapely.equals_exact(labels.geometry.values, labels2.geometry.values, 1e-9).all()
    assert not np.array_equal(image, read_scene(other)[0])


def test_a_previous_demo_is_replaced_and_other_folders_are_refused(tmp_path):
    demo = tmp_path / "demo-folder"
    (demo / "demo" / "model").mkdir(parents=True)
    (demo / "experiment.yaml").write_text(f"{MARKER}, written by `deepseg demo`\n")
    prepare_workdir(demo)
    assert not (demo / "demo").exists() and (demo / "experiment.yaml").exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    with pytest.raises(DeepSegError, match="not empty and not a DeepSeg demo folder"):
        prepare_workdir(mine)
    assert (mine / "thesis.tex").read_text() == "keep me"
    result = invoke("demo", "--workdir", str(mine))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "not empty and not a DeepSeg demo folder" in result.output


def test_bad_crossval_folds_are_a_usage_error(tmp_path):
    result = invoke("demo", "--workdir", str(tmp_path / "d"), "--crossval-folds", "0,3")
    assert result.exit_code == 2 and "expected distinct folds of 0,1,2" in result.output
    assert not (tmp_path / "d").exists()


def test_the_demo_runs_every_stage_and_learns(tmp_path):
    workdir = tmp_path / "demo"
    result = invoke("demo", "--workdir", str(workdir), "--size", "384", "--epochs", "10",
                    "--crossval-folds", "0")
    assert result.exit_code == 0, result.output
    out = workdir / "demo"
    for path in ("scene.tif", "labels.gpkg", "experiment.yaml"):
        assert (workdir / path).exists(), path
    assert len(list((workdir / "stores").glob("*.h5"))) == 1
    for path in ("model/best.keras", "model/model.json", "logs/curves.png",
                 "crossval/all_pycm.html", "crossval/all_pycm.csv", "crossval/folds.csv",
                 "crossval/fold0/fold0_pycm.html", "crossval/fold0/fold0_errors.tif"):
        assert (out / path).exists(), path
    assert (workdir / "experiment.yaml").read_text().startswith(MARKER)

    prediction = out / "predictions" / "prediction.tif"
    with rasterio.open(prediction) as src:
        assert src.crs.to_epsg() == 2193 and src.res == (0.5, 0.5) and src.shape == (384, 384)
        assert json.loads(src.tags(1)["CLASS_NAMES"]) == NAMES
        assert src.colormap(1)[NAMES.index("water")][:3] == (0x2B, 0x83, 0xBA)
        predicted = src.read(1)
    assert set(np.unique(predicted)) <= set(range(len(NAMES)))
    vectors = gpd.read_file(out / "predictions" / "prediction.gpkg")
    assert vectors.crs.to_epsg() == 2193 and len(vectors) > 0
    assert set(vectors["class_name"]) <= set(NAMES[1:])  # background is not vectorized

    for path in (workdir / "scene.tif", out / "crossval" / "all_pycm.html", prediction,
                 out / "logs" / "curves.png", out / "predictions" / "prediction.gpkg"):
        assert str(path) in result.output, path
    found = re.search(r"overall accuracy (\d\.\d+) ± \d\.\d+, mean IoU (\d\.\d+)", result.output)
    accuracy, miou = float(found[1]), float(found[2])
    counts = error_counts_total(out / "crossval")
    majority = counts.sum(axis=1).max() / counts.sum()
    assert accuracy == pytest.approx(np.trace(counts) / counts.sum(), abs=1e-3)
    assert accuracy > majority + 0.15 and miou > 0.5  # chance: the majority share, 1/5

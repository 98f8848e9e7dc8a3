"""QGIS applies DeepSeg's styles by itself: each output is opened in a real QGIS (Debian's
python3-qgis 3.22, headless) with nothing set by the test, and its renderer, legend and
rendered map show exactly the experiment's classes, colours and names: the class raster
(GeoTIFF and KEA), a crossval error map, the class polygons and the instance crowns."""

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.contracts.raster import parse_colour
from deepseg_core.metrics.errormap import BINARY_COLOURS
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import crossval, dataprep, predict
from tests.support import ROOT
from tests.support.gis_outputs import CLASSES, make_outputs
from tests.support.gis_tools import qgis_module, system_env, system_python
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, squares_scene, write_experiment

RENDER = (ROOT / "docs" / "qgis" / "render.py").read_text()
COLOURS = {i: parse_colour(c["color"]) for i, c in enumerate(CLASSES)}
NAMES = [c["name"] for c in CLASSES]
BLOB = (255, 160, 0, 255)

pytestmark = qgis_module("qgis-styles")


@pytest.fixture(scope="module")
def opened(tmp_path_factory, registry):
    """Every styled output, and what QGIS made of it."""
    folder = tmp_path_factory.mktemp("styles")
    outputs = make_outputs(registry, folder / "semantic")
    errors = crossval_error_map(registry, folder / "crossval")
    blobs = instance_outputs(registry, folder / "instances")
    pngs = folder / "png"
    pngs.mkdir()
    items = [{"path": str(outputs.prediction_tif), "png": str(pngs / "pred_tif.png")},
             {"path": str(errors), "png": str(pngs / "errors.png")},
             {"path": str(outputs.gpkg), "layer": "classes", "png": str(pngs / "classes.png"),
              "size": [96, 96]},
             {"path": str(blobs), "layer": "instances", "png": str(pngs / "crowns.png"),
              "size": [150, 150]}]
    if "kea" in registry.names("writer"):
        items.append({"path": str(outputs.prediction_kea), "png": str(pngs / "pred_kea.png")})
    env = system_env(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(folder))
    result = system_python(RENDER, *items, env=env, timeout=300)
    return {Path(i["path"]).name + (f"|{i['layer']}" if i["layer"] else ""): i
            for i in result["items"]}, outputs, errors, blobs


def crossval_error_map(registry, folder: Path) -> Path:
    """A fold's error map, written by the crossval stage (2 classes: TP/FP/TN/FN)."""
    img, gpkg, _ = squares_scene(folder, size=96, nsquares=8)
    exp = load_experiment(write_experiment(folder, img, gpkg, epochs=1, folds=2,
                                           crossval={"folds": [0]}, model="tinyfcn"))
    dataprep.run(exp, registry)
    crossval.run(exp, registry)
    return exp.outdir / "crossval" / "fold0" / "fold0_errors.tif"


def instance_outputs(registry, folder: Path) -> Path:
    """An instance prediction (blobs as crowns): its GeoPackage."""
    folder.mkdir()
    img, _, _ = squares_scene(folder, size=150, nsquares=14, seed=4)
    exp = predict_experiment(folder, img, model="tinyblobs", segmentation_type="instance",
                             tilesize=64, overlap=32,
                             classes=[{"name": "background"}, {"name": "blob",
                                                                "color": "#ffa000"}],
                             predict={"output": "predictions/blobs.tif"})
    save_untrained(exp, registry, img)
    return predict.run(exp, registry).with_suffix(".gpkg")


def pixels(png) -> np.ndarray:
    return np.round(matplotlib.image.imread(png)[..., :3] * 255).astype(int)


def check_render(item, raster, colours: dict, nodata) -> None:
    """Every pixel of QGIS's map has its value's colour; nodata is transparent (the white
    background shows)."""
    with load_plugins().registry.reader_for(raster).open(raster) as src:
        values = src.read()[0]
    image = pixels(item["png"])
    assert image.shape[:2] == values.shape
    table = {**{v: tuple(c[:3]) for v, c in colours.items()}, nodata: (255, 255, 255)}
    expected = np.array([table.get(v, (-1, -1, -1)) for v in range(int(values.max()) + 1)])
    wrong = np.any(image != expected[values], axis=-1)
    assert not wrong.any(), f"{wrong.sum()} pixels differ, first at {np.argwhere(wrong)[0]}"


@pytest.mark.parametrize("name", ["pred.tif", "pred.kea"])
def test_class_raster_legend_has_exactly_the_classes(opened, name):
    items, outputs, _, _ = opened
    if name not in items:
        pytest.skip("the deepseg-kea-io plugin is not installed")
    item = items[name]
    assert item["valid"] and item["renderer"] == "paletted"
    assert item["classes"] == [[v, list(COLOURS[v]), NAMES[v]] for v in range(len(NAMES))]
    assert item["legend"][1:] == NAMES  # after the band's title; not 256 entries: nodata
    assert item["legend"][0].startswith("Band 1")  # (255) is no class
    assert (outputs.prediction_tif.parent / "pred.qml").is_file()
    check_render(item, Path(item["path"]), COLOURS, 255)


def test_error_map_legend_lists_its_codes_and_nodata_is_transparent(opened):
    items, _, errors, _ = opened
    item = items["fold0_errors.tif"]
    assert item["valid"] and item["renderer"] == "paletted"
    names = ["true positive", "false positive", "true negative", "false negative"]
    assert item["classes"] == [[code, list(BINARY_COLOURS[code]), f"{n} (square)"]
                               for code, n in enumerate(names, start=1)]
    assert item["legend"][1:] == [f"{n} (square)" for n in names]
    check_render(item, errors, BINARY_COLOURS, 0)


def test_class_polygons_carry_class_colours_and_names(opened):
    items, outputs, _, _ = opened
    item = items["pred.gpkg|classes"]
    assert item["valid"] and item["renderer"] == "categorizedSymbol"
    assert item["attribute"] == "class_id" and item["features"] > 0
    assert [(int(c["value"]), c["label"], tuple(c["fill"])) for c in item["categories"]] == \
        [(v, NAMES[v], COLOURS[v]) for v in range(len(NAMES))]  # skip_classes: [] here
    assert item["legend"] == NAMES
    image = pixels(item["png"]).reshape(-1, 3)
    seen = {tuple(p) for p in image.tolist()}
    assert {(255, 0, 0), (0, 255, 0)} & seen  # class fills drawn in their colours


def test_instance_crowns_are_outlined_one_by_one(opened):
    items, _, _, _ = opened
    item = items["blobs.gpkg|instances"]
    assert item["valid"] and item["renderer"] == "categorizedSymbol"
    (crown,) = item["categories"]  # the background class has no crowns
    assert (int(crown["value"]), crown["label"]) == (1, "blob")
    assert crown["outline"] == list(BLOB) and crown["outline_style"] == "solid"
    assert crown["outline_width"] == 0.5 and crown["fill"][3] < 128  # see-through fill
    image = pixels(item["png"])
    outline = np.all(image == BLOB[:3], axis=-1)
    assert outline.sum() > 50  # the outlines are drawn in the class colour

"""QGIS styles of the outputs, without QGIS: what the .qml sidecar and the GeoPackage's
layer_styles hold, that the sidecar moves and disappears with its raster, and that predict
publishes them (tests/interop/test_qgis_styles.py opens the same outputs in a real QGIS)."""

import sqlite3
import xml.etree.ElementTree as ET

import numpy as np
import pyogrio
import pytest

from deepseg_core.contracts.raster import RasterInfo
from deepseg_core.errors import DeepSegError
from deepseg_core.io.sidecars import remove_output, replace_output, sidecars
from deepseg_core.metrics.errormap import error_map
from deepseg_core.stages import predict
from deepseg_core.styles import raster as raster_styles
from deepseg_core.styles.layers import class_polygons_style, layer_style, write_layer_style
from deepseg_core.styles.raster import palette, style_path, write_raster_style
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, write_raster

INFO = RasterInfo(32, 16, 1, "uint8", nodata=255, colormap={0: (0, 0, 0, 255),
                  1: (255, 0, 0, 255), 2: (0, 128, 0, 255)},
                  class_names=("background", "building", "tree & <shrub>"), thematic=True)


def test_raster_style_lists_the_classes_and_leaves_nodata_out(tmp_path):
    path = write_raster_style(tmp_path / "map.tif", INFO)
    assert path == tmp_path / "map.qml" == style_path(tmp_path / "map.tif")
    assert palette(path) == [(0, (0, 0, 0, 255), "background"), (1, (255, 0, 0, 255), "building"),
                             (2, (0, 128, 0, 255), "tree & <shrub>")]
    renderer = ET.parse(path).getroot().find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    # an error map: nodata is code 0, which is named but is no class
    codes, colours, names = error_map(np.zeros((2, 2), int), np.zeros((2, 2), int),
                                      ["a", "b", "c"])
    info = RasterInfo(2, 2, 1, "uint8", nodata=0, colormap=colours, class_names=names)
    entries = palette(write_raster_style(tmp_path / "errors.tif", info))
    assert [e[0] for e in entries] == list(range(1, 10))
    assert [e[2] for e in entries] == list(names[1:])


def test_rasters_without_classes_get_no_style(tmp_path):
    probabilities = INFO.with_(count=3, class_names=None, colormap=None)
    assert write_raster_style(tmp_path / "p.tif", probabilities) is None
    assert write_raster_style("/vsimem/x.tif", INFO) is None
    assert not list(tmp_path.iterdir())


def test_the_style_moves_and_disappears_with_its_raster(tmp_path):
    tmp, out = tmp_path / "map.incomplete.tif", tmp_path / "map.tif"
    tmp.write_bytes(b"raster")
    write_raster_style(tmp, INFO)
    (tmp_path / "other.qml").write_text("kept")
    replace_output(tmp, out)
    assert palette(tmp_path / "map.qml")[1][2] == "building"
    assert not (tmp_path / "map.incomplete.qml").exists()
    tmp.write_bytes(b"raster without classes")  # an older out's style is not kept
    replace_output(tmp, out)
    assert not (tmp_path / "map.qml").exists()
    write_raster_style(out, INFO)
    remove_output(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.qml"]
    # a GeoPackage holds its styles: the raster's .qml of the same name is not its sidecar
    assert sidecars(tmp_path / "map.gpkg") == [tmp_path / "map.gpkg.aux.xml"]


def test_a_style_that_does_not_read_back_fails_and_leaves_nothing(tmp_path, registry,
                                                                  monkeypatch):
    image = write_raster(tmp_path / "img.tif",
                         np.random.default_rng(0).integers(0, 255, (3, 40, 40)).astype("uint8"))
    exp = predict_experiment(tmp_path, image)
    save_untrained(exp, registry, image)
    written = raster_styles.write_text

    def truncated(path, text):  # a disk that lies: half of the file lands
        return written(path, text[:len(text) // 2])

    monkeypatch.setattr(raster_styles, "write_text", truncated)
    with pytest.raises(DeepSegError, match=r"prediction\.incomplete\.qml: not a readable QGIS "
                                           r"style") as err:
        predict.run(exp, registry)
    assert "\n" not in str(err.value)
    folder = exp.outdir / "predictions"
    assert not [p.name for p in folder.iterdir() if not p.name.startswith("prediction.tif.")]


def test_predict_publishes_the_raster_style_and_the_polygon_style(tmp_path, registry):
    image = write_raster(tmp_path / "img.tif",
                         np.random.default_rng(1).integers(0, 255, (3, 40, 40)).astype("uint8"))
    exp = predict_experiment(tmp_path, image, predict={"vectorize": {"enabled": True}})
    save_untrained(exp, registry, image)
    out = predict.run(exp, registry)
    names = [c.name for c in exp.classes]
    assert [e[2] for e in palette(out.with_suffix(".qml"))] == names
    assert not list(out.parent.glob("*incomplete*"))
    gpkg = out.with_suffix(".gpkg")
    assert [name for name, _ in pyogrio.list_layers(gpkg)] == ["classes", "layer_styles"]
    categories = ET.fromstring(layer_style(gpkg, "classes")).find("renderer-v2/categories")
    assert [(c.get("value"), c.get("label")) for c in categories] == [("1", "a"), ("2", "b")]


def test_layer_style_replaces_deepsegs_own_and_names_a_missing_layer(tmp_path):
    gpkg = tmp_path / "v.gpkg"
    import geopandas as gpd
    import shapely

    gpd.GeoDataFrame({"class_id": [1]}, geometry=[shapely.box(0, 0, 1, 1)],
                     crs=2193).to_file(gpkg, layer="classes")
    for colour in ((255, 0, 0, 255), (0, 0, 255, 255)):
        write_layer_style(gpkg, "classes", class_polygons_style(["bg", "x"], {1: colour}, [0]))
    with sqlite3.connect(gpkg) as db:
        rows = db.execute("SELECT styleName, useAsDefault, f_geometry_column FROM "
                          "layer_styles").fetchall()
    assert rows == [("deepseg", 1, "geom")]
    assert "0,0,255,255" in layer_style(gpkg, "classes")
    with pytest.raises(DeepSegError, match=r"v\.gpkg: no layer 'crowns' to give a style$"):
        write_layer_style(gpkg, "crowns", "<qgis/>")
    text = tmp_path / "notes.gpkg"
    text.write_text("not a GeoPackage")
    with pytest.raises(DeepSegError, match=r"notes\.gpkg: cannot write the style of layer "
                                           r"'classes' \(file is not a database\)$"):
        write_layer_style(text, "classes", "<qgis/>")

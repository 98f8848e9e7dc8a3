"""A real QGIS (Debian's python3-qgis 3.22, headless, under /usr/bin/python3) opens DeepSeg's
outputs: paletted renderers with the class colours (and GeoTIFF class names), a rendered map
with those colours at known pixels, and the GeoPackage."""

import matplotlib.image
import numpy as np
import pyogrio
import pytest

from deepseg_core.contracts.raster import parse_colour
from deepseg_core.plugins.manager import load_plugins
from tests.support.gis_outputs import CLASSES, make_outputs
from tests.support.gis_scripts import QGIS_RENDER
from tests.support.gis_tools import qgis_module, system_env, system_python

pytestmark = qgis_module("gis-qgis")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, registry):
    folder = tmp_path_factory.mktemp("qgis")
    outputs = make_outputs(registry, folder)
    rasters = [outputs.prediction_tif, outputs.errors_tif]
    if "kea" in registry.names("writer"):
        rasters += [outputs.prediction_kea, outputs.errors_kea]
    layer = pyogrio.list_layers(outputs.gpkg)[0][0]
    env = system_env(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(folder))
    result = system_python(QGIS_RENDER, [str(p) for p in rasters], outputs.gpkg, layer, folder,
                           env=env, timeout=300)
    return outputs, {r["path"]: r for r in result["rasters"]}, result


def raster_values(path) -> np.ndarray:
    registry = load_plugins().registry
    with registry.reader_for(path).open(path) as src:
        return src.read()[0]


def check_render(item, raster_path, colours: dict, nodata) -> dict:
    """Every pixel of QGIS's map (one screen pixel per raster pixel) has its class colour,
    nodata the white background; the number of pixels checked per value."""
    values = raster_values(raster_path)
    assert item["png"], "QGIS did not save the map"
    image = np.round(matplotlib.image.imread(item["png"])[..., :3] * 255).astype(int)
    assert image.shape[:2] == values.shape
    table = {**{v: tuple(c[:3]) for v, c in colours.items()}, nodata: (255, 255, 255)}
    expected = np.array([table.get(v, (-1, -1, -1)) for v in range(int(values.max()) + 1)])
    wrong = np.any(image != expected[values], axis=-1)
    assert not wrong.any(), f"{wrong.sum()} pixels differ, first at {np.argwhere(wrong)[0]}"
    found, counts = np.unique(values, return_counts=True)
    return dict(zip(found.tolist(), counts.tolist()))


def test_prediction_geotiff_is_paletted_with_class_colours_and_names(rendered):
    outputs, items, _ = rendered
    item = items[str(outputs.prediction_tif)]
    assert item["valid"] and item["renderer"] == "paletted"
    colours = {i: parse_colour(c["color"]) for i, c in enumerate(CLASSES)}
    classes = {int(v): (tuple(rgba), label) for v, rgba, label in item["classes"]}
    for value, cls in enumerate(CLASSES):
        assert classes[value] == (colours[value], cls["name"])  # QGIS shows the names
    checked = check_render(item, outputs.prediction_tif, colours, 255)
    assert len(checked) >= 2  # more than one class colour was checked


def test_error_map_geotiff_renders_its_codes_in_their_colours(rendered):
    outputs, items, _ = rendered
    item = items[str(outputs.errors_tif)]
    assert item["valid"] and item["renderer"] == "paletted"
    classes = {int(v): label for v, _, label in item["classes"]}
    for code, name in enumerate(outputs.error_names):
        assert classes[code] == name
    checked = check_render(item, outputs.errors_tif, outputs.error_colours, 0)
    assert set(checked) == set(np.unique(outputs.error_codes).tolist())


def test_kea_prediction_and_error_map_are_paletted_with_class_colours(rendered):
    outputs, items, _ = rendered
    if str(outputs.prediction_kea) not in items:
        pytest.skip("the deepseg-kea-io plugin is not installed")
    colours = {i: parse_colour(c["color"]) for i, c in enumerate(CLASSES)}
    for path, table, nodata in ((outputs.prediction_kea, colours, 255),
                                (outputs.errors_kea, outputs.error_colours, 0)):
        item = items[str(path)]
        assert item["valid"], f"QGIS cannot open {path} (no KEA driver in its GDAL?)"
        assert item["renderer"] == "paletted"
        classes = {int(v): tuple(rgba) for v, rgba, _ in item["classes"]}
        for value, rgba in table.items():
            if value != nodata:
                assert classes[value] == tuple(rgba)
        check_render(item, path, table, nodata)


def test_geopackage_loads_with_class_names(rendered):
    outputs, _, result = rendered
    (layer,) = result["layers"]
    frame = pyogrio.read_dataframe(outputs.gpkg)
    assert layer["valid"] and layer["features"] == len(frame) > 0
    assert "class_name" in layer["fields"] and layer["crs"] == "EPSG:2193"
    assert set(layer["class_names"]) == set(frame["class_name"])

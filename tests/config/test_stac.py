"""STAC inputs: images[].stac with asset keys resolves to the assets' files (or GDAL paths),
one source per asset stacked like any source (a catalog's items: a mosaic per asset), and the
fingerprints in the keys of stores cover the asset files themselves."""

import json
import re

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine

from deepseg_core.config import load_experiment
from deepseg_core.config.stac import asset_path
from deepseg_core.contracts.raster import Window
from deepseg_core.data.stack import ImageStack
from deepseg_core.errors import ConfigError
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.store.identity import settings_hash
from tests.support.synthetic import write_experiment

ORIGIN = (1_750_000, 5_900_040)


def cog(path, data, res):
    """A one-band Cloud Optimized GeoTIFF at ``res`` m, top-left at ORIGIN."""
    with rasterio.open(path, "w", driver="COG", width=data.shape[1], height=data.shape[0],
                       count=1, dtype=data.dtype, crs="EPSG:2193",
                       transform=Affine(res, 0, ORIGIN[0], 0, -res, ORIGIN[1])) as dst:
        dst.write(data, 1)
    return path


def item(path, hrefs: dict, item_id="S2_T60GUV"):
    """A STAC item whose assets are ``{key: href}``."""
    assets = {k: {"href": h, "type": "image/tiff; application=geotiff; profile=cloud-optimized"}
              for k, h in hrefs.items()}
    path.write_text(json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": item_id,
                                "geometry": None, "properties": {}, "links": [],
                                "assets": assets}))
    return path


@pytest.fixture
def scene(tmp_path):
    """Sentinel-2-like bands: B02-B04 at 10 m (4 x 4 px), B08 at 20 m (2 x 2 px)."""
    rng = np.random.default_rng(0)
    bands = {k: rng.integers(0, 4000, (4, 4)).astype("uint16") for k in ("B02", "B03", "B04")}
    bands["B08"] = rng.integers(0, 4000, (2, 2)).astype("uint16")
    for key, data in bands.items():
        cog(tmp_path / f"{key}.tif", data, 20 if key == "B08" else 10)
    hrefs = {"B02": "B02.tif", "B03": "./B03.tif", "B04": str(tmp_path / "B04.tif"),
             "B08": (tmp_path / "B08.tif").as_uri(), "visual": "https://example.com/tci.tif"}
    (tmp_path / "stac").mkdir()
    for key in ("B02", "B03"):  # hrefs relative to the item, which lies elsewhere
        hrefs[key] = f"../{hrefs[key].removeprefix('./')}"
    return bands, item(tmp_path / "stac" / "item.json", hrefs)


def stac_experiment(folder, stac, assets=("B02", "B03", "B04", "B08"), **entry):
    images = [{"stac": stac, "assets": list(assets), "resampling": "nearest", **entry}]
    path = write_experiment(folder, "unused.tif", folder / "labels.gpkg", images=images,
                            nbands=len(assets))
    (folder / "labels.gpkg").write_text("")
    return path


def test_item_assets_are_stacked_band_by_band(tmp_path, scene):
    bands, stac = scene
    exp = load_experiment(stac_experiment(tmp_path, stac.as_uri()))
    assert [s.path for s in exp.images] == [str(tmp_path / f"{k}.tif")
                                           for k in ("B02", "B03", "B04", "B08")]
    assert [(s.name, s.assets, s.stac) for s in exp.images][0] == ("B02", ["B02"], str(stac))
    with ImageStack(exp.images, load_plugins().registry) as stack:
        assert stack.band_names == ["B02:1", "B03:1", "B04:1", "B08:1"]
        assert (stack.grid.width, stack.grid.height) == (4, 4)
        data, valid = stack.read(Window(0, 0, 4, 4))
    assert valid.all()
    expected = [bands["B02"], bands["B03"], bands["B04"], np.kron(bands["B08"], np.ones((2, 2)))]
    assert np.array_equal(data, np.stack(expected))  # 20 m band onto the 10 m grid


def test_fingerprints_cover_the_asset_files(tmp_path, scene):
    _, stac = scene
    before = settings_hash(load_experiment(stac_experiment(tmp_path, str(stac))))
    with rasterio.open(tmp_path / "B08.tif") as src:
        data = src.read(1)
    cog(tmp_path / "B08.tif", (data + 1).astype("uint16"), 20)  # a new acquisition, same size
    after = settings_hash(load_experiment(stac_experiment(tmp_path, str(stac))))
    assert before != after


def test_a_catalog_mosaics_each_asset_over_its_items(tmp_path):
    left, right = np.full((4, 2), 1, "uint16"), np.full((4, 2), 2, "uint16")
    cog(tmp_path / "a.tif", left, 10)
    with rasterio.open(tmp_path / "b.tif", "w", driver="COG", width=2, height=4, count=1,
                       dtype="uint16", crs="EPSG:2193",
                       transform=Affine(10, 0, ORIGIN[0] + 20, 0, -10, ORIGIN[1])) as dst:
        dst.write(right, 1)
    (tmp_path / "items").mkdir()
    item(tmp_path / "items" / "a.json", {"B02": "../a.tif"}, "a")
    item(tmp_path / "items" / "b.json", {"B02": "../b.tif"}, "b")
    child = {"type": "Catalog", "id": "c", "links": [{"rel": "item", "href": "b.json"}]}
    (tmp_path / "items" / "child.json").write_text(json.dumps(child))
    root = {"type": "Catalog", "id": "root", "stac_version": "1.0.0",
            "links": [{"rel": "item", "href": "items/a.json"},
                      {"rel": "child", "href": "items/child.json"},
                      {"rel": "root", "href": "catalog.json"}]}
    (tmp_path / "catalog.json").write_text(json.dumps(root))
    exp = load_experiment(stac_experiment(tmp_path, "catalog.json", ["B02"]))  # relative
    assert exp.images[0].path == [str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]
    with ImageStack(exp.images, load_plugins().registry) as stack:
        data, _ = stack.read(Window(0, 0, 4, 4))
    assert np.array_equal(data[0], np.hstack([left, right]))


def test_urls_become_gdal_paths(tmp_path):
    where = tmp_path / "item.json"
    assert asset_path("https://host/x/B02.tif", where) == "/vsicurl/https://host/x/B02.tif"
    assert asset_path("s3://bucket/x/B02.tif", where) == "/vsis3/bucket/x/B02.tif"
    assert asset_path("gs://bucket/B02.tif", where) == "/vsigs/bucket/B02.tif"
    assert asset_path("B02.tif", where) == str(tmp_path / "B02.tif")


@pytest.mark.parametrize("entry, message", [
    ({"assets": ["B09"]}, r"item\.json: item 'S2_T60GUV' has no asset 'B09' \(its assets: B02, "
                          r"B03, B04, B08, visual\)"),
    ({"assets": []}, r"'assets' must list the asset keys to stack"),
    ({"path": "x.tif"}, r"give 'path' \(files\) or 'stac' \(a STAC item\), not both"),
    ({"stac": "https://host/item.json"}, r"a STAC file must be local or file://"),
    ({"stac": "missing.json"}, r"missing\.json: STAC file not found"),
    ({"stac": "labels.gpkg"}, r"labels\.gpkg: not a STAC JSON file"),
])
def test_bad_stac_entries_are_one_line(tmp_path, scene, entry, message):
    _, stac = scene
    settings = {"stac": str(stac), "assets": ["B02"], **entry}
    path = stac_experiment(tmp_path, settings.pop("stac"), settings.pop("assets"), **settings)
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: images[0].stac: ")
    assert re.search(message, text), text


def test_assets_without_stac_and_a_missing_asset_file(tmp_path, scene):
    _, stac = scene
    path = stac_experiment(tmp_path, str(stac))
    data = yaml.safe_load(path.read_text())
    data["images"] = [{"path": str(tmp_path / "B02.tif"), "assets": ["B02"]}]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"images\[0\]: 'assets' needs 'stac'"):
        load_experiment(path)
    (tmp_path / "B03.tif").unlink()
    with pytest.raises(ConfigError, match=r"images\[1\]\.path \(asset B03 of .*item\.json\): "
                                          r"file not found: .*B03\.tif$"):
        load_experiment(stac_experiment(tmp_path, str(stac)))

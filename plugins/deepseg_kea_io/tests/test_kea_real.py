"""Reading real libkea-written files (rsgislib's test data) against their GeoTIFF twins."""

import numpy as np
import pytest
import rasterio
from deepseg_kea_io import KeaReader
from rasterio.crs import CRS

from deepseg_core.contracts.raster import Window


@pytest.fixture(scope="module")
def rsgislib(shared_data):
    return shared_data / "rsgislib"


def test_subset_matches_its_geotiff(rsgislib):
    with rasterio.open(rsgislib / "sen2_20210527_aber_subset.tif") as tif:
        expected, crs, transform = tif.read(), tif.crs, tif.transform
    with KeaReader().open(rsgislib / "sen2_20210527_aber_subset_kea.kea") as src:
        info = src.info
        assert (info.count, info.height, info.width, info.dtype) == (10, 339, 324, "uint16")
        assert CRS.from_wkt(info.crs) == crs
        # the GeoTIFF's origin went through a different float path: equal to a micrometre
        np.testing.assert_allclose(info.transform[:6], transform[:6], rtol=0, atol=1e-6)
        assert info.nodata is None and not info.thematic
        assert info.descriptions == tuple(f"Band {k}" for k in range(1, 11))
        full = src.read()
        np.testing.assert_array_equal(full, expected)
        assert src.overviews(1) == [] and src.attribute_table(1) == {}
        assert src.gcps == ([], None)


def test_subset_windows_are_slices_of_the_full_read(rsgislib):
    with KeaReader().open(rsgislib / "sen2_20210527_aber_subset_kea.kea") as src:
        full = src.read()
        for window in (Window(0, 0, 64, 64), Window(100, 37, 200, 250), Window(338, 323, 1, 1)):
            np.testing.assert_array_equal(src.read(window), full[(slice(None), *window.slices)])
        np.testing.assert_array_equal(src.read(Window(5, 7, 3, 4), bands=[3, 1]),
                                      full[[2, 0], 5:8, 7:11])
        part = src.read(Window(-10, 300, 40, 50))  # above and right of the raster
        assert part.shape == (10, 40, 50)
        np.testing.assert_array_equal(part[:, 10:, :24], full[:, :30, 300:])
        assert not part[:, :10].any() and not part[:, :, 24:].any()


def test_class_map_matches_its_geotiff(rsgislib):
    with rasterio.open(rsgislib / "sen2_20210527_aber_cls.tif") as tif:
        expected, crs, cmap, transform = tif.read(), tif.crs, tif.colormap(1), tif.transform
    with KeaReader().open(rsgislib / "sen2_20210527_aber_cls.kea") as src:
        info = src.info
        assert (info.count, info.height, info.width, info.dtype) == (1, 947, 931, "uint16")
        np.testing.assert_array_equal(src.read(), expected)
        assert CRS.from_wkt(info.crs) == crs
        np.testing.assert_allclose(info.transform[:6], transform[:6], rtol=0, atol=1e-6)
        assert info.nodata == 0 and info.thematic
        assert info.class_names == ("", "Forest", "Grass", "Urban", "Water")
        assert set(info.colormap) == {0, 1, 2, 3, 4}
        for value in range(1, 5):  # row 0: KEA alpha 255, GeoTIFF palettes have none
            assert info.colormap[value] == tuple(cmap[value])
        assert info.colormap[0][:3] == tuple(cmap[0][:3])
        assert src.overviews(1) == [(236, 232), (118, 116), (59, 58)]
        table = src.attribute_table(1)
        assert list(table) == ["Histogram", "Red", "Green", "Blue", "Alpha", "ClassName"]
        np.testing.assert_array_equal(table["Histogram"],
                                      np.bincount(expected.ravel(), minlength=5) * [0, 1, 1, 1, 1])
        assert src.band_metadata(1)["LAYER_TYPE"] == "thematic"
        assert src.band_metadata(1)["STATISTICS_HISTOMAX"] == "5"


def test_class_map_overviews_and_padding(rsgislib):
    with KeaReader().open(rsgislib / "sen2_20210527_aber_cls.kea") as src:
        level3 = src.read_overview(1, 3)
        assert level3.shape == (59, 58) and level3.dtype == np.uint16
        assert set(np.unique(level3)) <= {0, 1, 2, 3, 4}
        np.testing.assert_array_equal(src.read_overview(1, 1, Window(10, 20, 30, 40)),
                                      src.read_overview(1, 1)[10:40, 20:60])
        padded = src.read_overview(1, 2, Window(110, 110, 20, 20))
        np.testing.assert_array_equal(padded[:8, :6], src.read_overview(1, 2)[110:, 110:])
        assert not padded[8:].any()
        mask = src.read_mask(1, Window(-2, 0, 6, 6))  # no MASK dataset: from nodata 0
        pixels = src.read(Window(-2, 0, 6, 6))[0]
        np.testing.assert_array_equal(mask[2:], np.where(pixels[2:] != 0, 255, 0))
        assert not mask[:2].any()


def test_gmw_class_map_in_geographic_coordinates(rsgislib):
    with KeaReader().open(rsgislib / "classification" / "gmw_acc_roi_1_cls.kea") as src:
        info = src.info
        assert CRS.from_wkt(info.crs).to_epsg() == 4326
        assert (info.count, info.height, info.width, info.dtype) == (1, 901, 901, "uint8")
        assert info.thematic and info.nodata == 0
        assert info.class_names == ("", "Mangrove", "Other")
        table = src.attribute_table(1)
        assert list(table) == ["Histogram", "Red", "Green", "Blue", "Alpha", "cls_name"]
        assert all(len(v) == 256 for v in table.values())
        pixels = src.read()
        np.testing.assert_array_equal(table["Histogram"][1:3],
                                      np.bincount(pixels.ravel(), minlength=3)[1:3])
        assert src.overviews(1) == [(225, 225), (112, 112), (56, 56)]
        assert info.transform.a == pytest.approx(-info.transform.e)

"""KEA files written by GDAL itself (gdal_translate -of KEA, gdaladdo, the GDAL API's RAT,
GDAL's update mode) read in DeepSeg with the same values (KEA-enabled system GDAL)."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from tests.support.gis_outputs import thematic_info, write_kea
from tests.support.gis_scripts import MAKE_KEA_WITH_RAT
from tests.support.gis_tools import describe, gdal, kea_gdal_missing, system_python

kea_io = pytest.importorskip("deepseg_kea_io", reason="the deepseg-kea-io plugin is not installed")
KeaReader = kea_io.KeaReader

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(kea_gdal_missing() is not None, reason=str(kea_gdal_missing()))]


def test_gdal_translate_to_kea_reads_the_same_in_deepseg(shared_data, tmp_path):
    for name in ("byte.tif", "RGB.byte.tif", "float_nan.tif"):
        source = shared_data / "rasterio" / name
        kea = tmp_path / f"{name}.kea"
        gdal("gdal_translate", "-q", "-of", "KEA", source, kea)
        with rasterio.open(source) as src, KeaReader().open(kea) as got:
            np.testing.assert_array_equal(got.read(), src.read(), err_msg=name)
            assert got.info.transform == src.transform and got.info.count == src.count
            assert (CRS.from_wkt(got.info.crs) == src.crs) if src.crs else got.info.crs is None
            assert got.info.dtype == src.dtypes[0]
            if src.nodata is None:
                assert got.info.nodata is None
            else:
                assert got.info.nodata == src.nodata or (np.isnan(got.info.nodata)
                                                         and np.isnan(src.nodata))


def test_gdaladdo_overviews_read_the_same_in_deepseg(shared_data, tmp_path):
    kea = tmp_path / "rgb.kea"
    gdal("gdal_translate", "-q", "-of", "KEA", shared_data / "rasterio" / "RGB.byte.tif", kea)
    gdal("gdaladdo", "-q", "-r", "nearest", kea, "2", "4", "8")
    (item,) = describe(tmp_path, kea)
    with KeaReader().open(kea) as src:
        for k, band in enumerate(item["bands"], start=1):
            assert [list(reversed(s)) for s in src.overviews(k)] == band["overviews"]
            for level, expected in enumerate(band["overview_pixels"], start=1):
                np.testing.assert_array_equal(src.read_overview(k, level), expected)


def test_attribute_table_added_through_the_gdal_api_reads_in_deepseg(tmp_path):
    names = ["nodata", "kauri", "rimu", "totara"]
    data = (np.indices((40, 50)).sum(axis=0) % 4).astype(np.uint8)
    pixels = tmp_path / "pixels.npy"
    np.save(pixels, data)
    kea = tmp_path / "gdal_rat.kea"
    system_python(MAKE_KEA_WITH_RAT, kea, pixels, names)
    with KeaReader().open(kea) as src:
        info = src.info
        np.testing.assert_array_equal(src.read()[0], data)
        assert info.thematic and info.nodata == 255
        assert info.class_names == tuple(names)
        assert {v: info.colormap[v] for v in range(4)} == {
            i: (40 * i, 255 - 40 * i, 7 * i, 255) for i in range(4)}
        assert info.transform == Affine(5, 0, 500000, 0, -5, 6000000)
        assert CRS.from_wkt(info.crs).to_epsg() == 32760
        np.testing.assert_allclose(src.attribute_table(1)["Area"], [0, 1.5, 3.0, 4.5])


def test_gdal_update_of_a_deepseg_kea_keeps_it_readable(tmp_path):
    info = thematic_info(30, 20)
    data = (np.arange(600).reshape(1, 20, 30) % 4).astype(np.uint8)
    path = write_kea(tmp_path / "update.kea", info, data)
    script = ("import json,sys\nfrom osgeo import gdal\ngdal.UseExceptions()\n"
              "ds=gdal.Open(json.loads(sys.argv[1])[0], gdal.GA_Update)\n"
              "ds.GetRasterBand(1).SetDescription('edited in GDAL')\nds=None\nprint('{}')")
    system_python(script, path)
    with KeaReader().open(path) as src:
        np.testing.assert_array_equal(src.read(), data)
        assert src.info.descriptions[0] == "edited in GDAL"
        assert src.info.class_names == info.class_names


def test_kea_copy_by_gdal_is_a_copy(tmp_path):
    """gdal_translate KEA -> KEA of a DeepSeg file keeps pixels, palette and class names."""
    info = thematic_info(30, 20)
    data = (np.arange(600).reshape(1, 20, 30) % 4).astype(np.uint8)
    path = write_kea(tmp_path / "ours.kea", info, data)
    copy = tmp_path / "copy.kea"
    gdal("gdal_translate", "-q", "-of", "KEA", path, copy)
    with KeaReader().open(copy) as src:
        np.testing.assert_array_equal(src.read(), data)
        assert src.info.class_names == info.class_names
        assert src.info.colormap == info.colormap

"""Writing KEA files window by window and reading them back."""

import h5py
import numpy as np
import pytest
from affine import Affine
from deepseg_kea_io import KeaReader, KeaWriter
from deepseg_kea_io.layout import create_image
from rasterio.crs import CRS

from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.testing.rasters import write_in_windows

WKT = CRS.from_epsg(27700).to_wkt()
DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64"]
CODES = dict(zip(DTYPES, range(1, 11)))


def write_tiles(path, info, pixels, tile=7, **options):
    """Write ``pixels`` in ``tile`` x ``tile`` windows (never aligned with the chunks)."""
    return write_in_windows(KeaWriter(), path, info, pixels, tile, **options)


def extremes(dtype, shape, rng):
    """Random pixels of ``dtype`` including its smallest and largest values."""
    if np.dtype(dtype).kind == "f":
        values = rng.normal(0, 1e3, shape).astype(dtype)
        values.flat[:2] = np.finfo(dtype).min, np.finfo(dtype).max
    else:
        lim = np.iinfo(dtype)
        values = rng.integers(lim.min, lim.max, shape, dtype=dtype, endpoint=True)
        values.flat[:2] = lim.min, lim.max
    return values


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips(tmp_path, dtype):
    rng = np.random.default_rng(CODES[dtype])
    pixels = extremes(dtype, (2, 23, 19), rng)
    nodata = float("nan") if np.dtype(dtype).kind == "f" else int(np.iinfo(dtype).max)
    info = RasterInfo(width=19, height=23, count=2, dtype=dtype, nodata=nodata, crs=WKT,
                      transform=Affine(10, 0, 1000, 0, -10, 2000))
    path = write_tiles(tmp_path / f"{dtype}.kea", info, pixels, block_size=8)
    with h5py.File(path, "r") as f:
        assert f["BAND2/DATATYPE"][0] == CODES[dtype]
        assert f["BAND1/DATA"].dtype == np.dtype(dtype) and f["BAND1/DATA"].chunks == (8, 8)
        assert f["BAND1/NO_DATA_VAL"].dtype == np.dtype(dtype)
    with KeaReader().open(path) as src:
        assert src.info.dtype == dtype and src.info.count == 2
        np.testing.assert_array_equal(src.read(), pixels)
        if np.dtype(dtype).kind == "f":
            assert np.isnan(src.info.nodata)
            assert np.isnan(src.read(Window(-1, 0, 2, 2))[:, 0]).all()
        else:
            assert src.info.nodata == nodata and isinstance(src.info.nodata, int)
            assert (src.read(Window(22, 18, 3, 3))[:, 1:, :] == nodata).all()


def test_header_metadata_and_class_table_round_trip(tmp_path):
    info = RasterInfo(width=30, height=20, count=1, dtype="uint8", nodata=255, crs=WKT,
                      transform=Affine.from_gdal(1, 2, 3, 4, 5, 6),
                      descriptions=("desc",), thematic=True,
                      colormap={0: (0, 255, 0, 255), 1: (255, 0, 255, 255), 2: (0, 0, 255)},
                      class_names=("none", "tree", "water"),
                      metadata={"foo": "bar", "bar": "baw", "AREA_OR_POINT": "Area"})
    pixels = np.arange(600, dtype="uint8").reshape(1, 20, 30) % 3
    pixels[0, 0, :5] = 255
    path = write_tiles(tmp_path / "classes.kea", info, pixels)
    with KeaReader().open(path) as src:
        got = src.info
        assert got.transform.to_gdal() == (1, 2, 3, 4, 5, 6)
        assert got.crs == WKT and got.nodata == 255 and got.thematic
        assert got.descriptions == ("desc",) and got.metadata == info.metadata
        assert got.colormap == {0: (0, 255, 0, 255), 1: (255, 0, 255, 255), 2: (0, 0, 255, 255)}
        assert got.class_names == ("none", "tree", "water")
        np.testing.assert_array_equal(src.read(), pixels)
        table = src.attribute_table(1)
        assert list(table) == ["Histogram", "Red", "Green", "Blue", "Alpha", "ClassName"]
        np.testing.assert_array_equal(table["Histogram"], np.bincount(pixels[0][pixels[0] < 3]))
        assert [c.usage for c in src.attribute_columns(1)] == [
            "PixelCount", "Red", "Green", "Blue", "Alpha", "Name"]
        meta = src.band_metadata(1)
        assert meta["STATISTICS_HISTONUMBINS"] == "3" and meta["LAYER_TYPE"] == "thematic"
        assert meta["STATISTICS_MAXIMUM"] == "2" and meta["STATISTICS_MINIMUM"] == "0"
    assert KeaReader().open(path).info == got


def test_statistics_are_streamed_correctly(tmp_path):
    rng = np.random.default_rng(3)
    pixels = rng.normal(50, 7, (1, 40, 33)).astype("float32")
    pixels[0, 3:9, 4:30] = -1
    pixels[0, 20, 20] = np.nan
    info = RasterInfo(width=33, height=40, count=1, dtype="float32", nodata=-1)
    path = write_tiles(tmp_path / "stats.kea", info, pixels, tile=11, block_size=6)
    valid = pixels[(pixels != -1) & ~np.isnan(pixels)].astype(np.float64)
    with KeaReader().open(path) as src:
        meta = src.band_metadata(1)
        assert float(meta["STATISTICS_MEAN"]) == pytest.approx(valid.mean(), rel=1e-12)
        assert float(meta["STATISTICS_STDDEV"]) == pytest.approx(valid.std(), rel=1e-10)
        assert float(meta["STATISTICS_MINIMUM"]) == pytest.approx(valid.min(), rel=1e-13)
        assert float(meta["STATISTICS_MAXIMUM"]) == pytest.approx(valid.max(), rel=1e-13)
        assert src.attribute_table(1) == {}  # athematic: no histogram
        assert meta["LAYER_TYPE"] == "athematic" and not src.info.thematic


def test_overviews_average_and_nearest(tmp_path):
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 200, (2, 37, 29)).astype("uint16")
    pixels[:, :4, :4] = 9999  # one all-nodata cell at factor 4
    pixels[:, 5, 5] = 9999
    info = RasterInfo(width=29, height=37, count=2, dtype="uint16", nodata=9999)
    path = write_tiles(tmp_path / "avg.kea", info, pixels, block_size=5, overviews=[4, 2])
    with KeaReader().open(path) as src, h5py.File(path, "r") as f:
        assert src.overviews(2) == [(18, 14), (9, 7)]
        assert f["BAND1/OVERVIEWS/OVERVIEW2"].chunks == (5, 5)
        assert f["BAND1/OVERVIEWS/OVERVIEW2"].attrs["BLOCK_SIZE"] == 5
        for level, factor in ((1, 2), (2, 4)):
            h, w = src.overviews(1)[level - 1]
            cells = pixels[1, :h * factor, :w * factor].reshape(h, factor, w, factor)
            cells = np.ma.masked_equal(cells.astype(float), 9999)
            expected = np.floor(cells.mean(axis=(1, 3)) + 0.5).filled(9999).astype("uint16")
            np.testing.assert_array_equal(src.read_overview(2, level), expected)
        assert src.read_overview(1, 2)[0, 0] == 9999
    info = info.with_(thematic=True)
    path = write_tiles(tmp_path / "near.kea", info, pixels, block_size=16, overviews="auto")
    with KeaReader().open(path) as src:
        assert src.overviews(1) == [(18, 14), (9, 7)]
        np.testing.assert_array_equal(src.read_overview(1, 1), pixels[0, 1:36:2, 1:28:2])
        np.testing.assert_array_equal(src.read_overview(2, 2), pixels[1, 2:36:4, 2:28:4])


def test_overviews_of_floats_ignore_nan(tmp_path):
    pixels = np.arange(64, dtype="float64").reshape(1, 8, 8)
    pixels[0, :2, :2] = np.nan
    pixels[0, 2, 2] = np.nan
    info = RasterInfo(width=8, height=8, count=1, dtype="float64")
    path = write_tiles(tmp_path / "f.kea", info, pixels, overviews=[2], resampling="average")
    with KeaReader().open(path) as src:
        ovr = src.read_overview(1, 1)
        assert np.isnan(ovr[0, 0]) and ovr[1, 1] == pytest.approx((27 + 26 + 19) / 3)
        assert src.info.nodata is None


def test_gcps_round_trip(tmp_path):
    gcps = [("id", "info", 0, 1, 2, 3, 4), ("id2", "info2", 5, 6, 7, 8, 9)]
    info = RasterInfo(width=4, height=3, count=1, dtype="uint8")
    path = write_tiles(tmp_path / "gcps.kea", info, np.ones((1, 3, 4), "uint8"),
                       gcps=(gcps, "foo"))
    with KeaReader().open(path) as src:
        points, projection = src.gcps
        assert projection == "foo"
        assert [tuple(p) for p in points] == [(g[0], g[1], *map(float, g[2:])) for g in gcps]
        assert points[1].id == "id2" and points[1].z == 9.0
        assert src.info.crs is None and src.info.transform == Affine.identity()


def test_masks_are_read_from_the_mask_dataset(tmp_path):
    info = RasterInfo(width=10, height=12, count=2, dtype="int16", nodata=-5)
    pixels = np.full((2, 12, 10), 7, dtype="int16")
    pixels[1, 0, 0] = -5
    path = write_tiles(tmp_path / "mask.kea", info, pixels)
    mask = np.full((12, 10), 255, dtype="uint8")
    mask[3:5, 2:8] = 0
    with h5py.File(path, "r+") as f:  # GDAL's per-band mask, as docs/KEA.md lays it out
        create_image(f["BAND1"], "MASK", (12, 10), "uint8", 10, 1, fill=255, block_attr=False)
        f["BAND1/MASK"][3:5, 2:8] = 0
    with KeaReader().open(path) as src:
        assert src.bands[0].has_mask and not src.bands[1].has_mask
        np.testing.assert_array_equal(src.read_mask(1), mask)
        np.testing.assert_array_equal(src.read_mask(1, Window(2, 1, 4, 4)), mask[2:6, 1:5])
        assert src.read_mask(2)[0, 0] == 0 and src.read_mask(2)[1:].all()


def test_extra_attribute_columns_and_crs_strings(tmp_path):
    info = RasterInfo(width=6, height=5, count=1, dtype="uint8", crs="EPSG:4326",
                      colormap={1: (10, 20, 30, 40)})
    extra = {"area": np.array([0.0, 1.5]), "ok": np.array([False, True]),
             "label": np.array(["a", "b"]), "Red": np.array([9, 8])}
    path = write_tiles(tmp_path / "rat.kea", info, np.ones((1, 5, 6), "uint8"),
                       attribute_table=extra)
    with KeaReader().open(path) as src:
        table = src.attribute_table(1)
        assert list(table) == ["Histogram", "Red", "Green", "Blue", "Alpha", "area", "ok",
                               "label"]
        np.testing.assert_array_equal(table["Red"], [9, 8])
        np.testing.assert_array_equal(table["ok"], [False, True])
        assert table["ok"].dtype == bool and list(table["label"]) == ["a", "b"]
        assert src.info.colormap == {0: (9, 0, 0, 0), 1: (8, 20, 30, 40)}
        assert src.info.thematic and CRS.from_wkt(src.info.crs).to_epsg() == 4326

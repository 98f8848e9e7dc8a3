"""The built-in rasterio reader and the GeoTIFF/COG writers."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from deepseg_core.builtin.gtiff_write import auto_overviews
from deepseg_core.builtin.rasterio_io import CogWriter, GdalReader, GTiffWriter
from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.errors import DeepSegError, RegistryError
from deepseg_core.plugins.manager import load_plugins

PRIMES = np.array([7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43])


def gdal_checksum(band: np.ndarray) -> int:
    """GDAL's band checksum (see shared/data/SOURCES.md); the running & 0xFFFF is a sum mod 2^16."""
    values = band.ravel().astype(np.int64)
    return int((values % PRIMES[np.arange(values.size) % 11]).sum() & 0xFFFF)


@pytest.fixture
def rgb(shared_data):
    return shared_data / "rasterio" / "RGB.byte.tif"


def thematic_info(width=200, height=150):
    return RasterInfo(
        width=width, height=height, count=1, dtype="uint8", crs="EPSG:2193",
        transform=Affine(0.5, 0, 1_750_000, 0, -0.5, 5_900_000), nodata=0,
        descriptions=("landcover",), thematic=True,
        colormap={0: (0, 0, 0, 255), 1: (34, 139, 34, 255), 2: (240, 230, 140, 255),
                  3: (0, 0, 0, 255), 4: (30, 144, 255, 255)},
        class_names=("nodata", "forest", "grass", "urban", "water"),
        metadata={"PRODUCER": "deepseg tests"})


def class_map(info):
    rows, cols = np.indices((info.height, info.width))
    return ((rows // 10 + cols // 7) % 5).astype(info.dtype)[None]


def write_in_windows(writer, path, info, data, step=64, **options):
    with writer.create(path, info, **options) as sink:
        for r in range(0, info.height, step):
            for c in range(0, info.width, step):
                window = Window(r, c, step, step).clip(info.height, info.width)
                sink.write(data[(slice(None), *window.slices)], window)
    return path


def test_reader_gives_gdal_checksums_and_georeference(rgb):
    with GdalReader().open(rgb) as src:
        info, pixels = src.info, src.read()
    assert (info.width, info.height, info.count, info.dtype) == (791, 718, 3, "uint8")
    assert info.nodata == 0 and not info.thematic and info.colormap is None
    assert CRS.from_wkt(info.crs) == CRS.from_epsg(32618)
    assert pixels.shape == (3, 718, 791)
    assert [gdal_checksum(b) for b in pixels] == [25420, 29131, 37860]


def test_windowed_reads_and_padding(rgb):
    with GdalReader().open(rgb) as src:
        whole = src.read()
        assert (src.read(Window(100, 200, 64, 32)) == whole[:, 100:164, 200:232]).all()
        assert (src.read(Window(5, 6, 7, 8), bands=[3, 1]) == whole[[2, 0], 5:12, 6:14]).all()
        edge = src.read(Window(700, -10, 32, 32))
        assert edge.shape == (3, 32, 32)
        assert (edge[:, :18, 10:] == whole[:, 700:, :22]).all()
        assert (edge[:, 18:] == 0).all() and (edge[:, :, :10] == 0).all()
        assert (src.read(Window(-100, 900, 50, 50)) == 0).all()
        with pytest.raises(DeepSegError, match="RGB.byte.tif: no band 4"):
            src.read(bands=[4])


def test_padding_without_nodata_and_with_nan(tmp_path):
    base = RasterInfo(width=20, height=10, count=1, dtype="float32", crs="EPSG:32618",
                      transform=Affine(10, 0, 500_000, 0, -10, 4_000_000))
    data = np.ones((1, 10, 20), np.float32)
    for nodata, fill in [(None, 0.0), (float("nan"), np.nan), (-9999.0, -9999.0)]:
        path = write_in_windows(GTiffWriter(), tmp_path / "f.tif", base.with_(nodata=nodata),
                                data)
        with GdalReader().open(path) as src:
            out = src.read(Window(5, 15, 10, 10))
        assert (out[0, :5, :5] == 1).all()
        np.testing.assert_array_equal(out[0, 5:], np.full((5, 10), fill, np.float32))


@pytest.mark.parametrize("writer", [GTiffWriter(), CogWriter()], ids=["gtiff", "cog"])
def test_round_trip_of_rgb_byte(rgb, tmp_path, writer):
    with GdalReader().open(rgb) as src:
        info, pixels = src.info, src.read()
    out = write_in_windows(writer, tmp_path / "copy.tif", info, pixels, step=256)
    with GdalReader().open(out) as src:
        assert (src.read() == pixels).all()
        assert CRS.from_wkt(src.info.crs) == CRS.from_wkt(info.crs)
        assert src.info.transform == info.transform and src.info.nodata == 0
        assert src.info.metadata == info.metadata
    with rasterio.open(out) as ds:
        assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        assert ds.compression.name.lower() == "deflate"


@pytest.mark.parametrize("writer", [GTiffWriter(), CogWriter()], ids=["gtiff", "cog"])
def test_thematic_round_trip(tmp_path, writer):
    info = thematic_info()
    data = class_map(info)
    out = write_in_windows(writer, tmp_path / "classes.tif", info, data, blocksize=64,
                           overviews="auto")
    with GdalReader().open(out) as src:
        got = src.info
        assert (src.read() == data).all()
    assert got.thematic and got.class_names == info.class_names
    assert got.descriptions == ("landcover",) and got.metadata["PRODUCER"] == "deepseg tests"
    assert CRS.from_wkt(got.crs) == CRS.from_epsg(2193) and got.transform == info.transform
    assert set(got.colormap) == set(info.colormap)  # trailing unset entries trimmed
    for value, rgba in info.colormap.items():
        assert got.colormap[value][:3] == rgba[:3]
    assert got.colormap[4] == (30, 144, 255, 255)  # a GeoTIFF palette stores no alpha
    with rasterio.open(out) as ds:
        assert ds.profile["tiled"] and ds.overviews(1) == [2, 4]  # the same rule as GDAL's
        layout = ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")
        if isinstance(writer, CogWriter):
            assert layout == "COG"
            assert (ds.read(1, out_shape=(75, 100)) < 5).all()  # nearest: still class ids
    assert not list(tmp_path.glob(".*partial*"))


def test_gtiff_overviews_and_options(tmp_path):
    assert auto_overviews(791, 718, 256) == [2, 4]
    assert auto_overviews(100, 100, 256) == []
    info = thematic_info(100, 60).with_(colormap=None, class_names=None, thematic=False)
    data = class_map(info)
    out = write_in_windows(GTiffWriter(), tmp_path / "o.tif", info, data, overviews=[2, 4],
                           compress=None, tiled=False)
    with rasterio.open(out) as ds:
        assert ds.overviews(1) == [2, 4] and ds.compression is None and not ds.profile["tiled"]
    out = write_in_windows(CogWriter(), tmp_path / "n.tif", info, data, overviews=None,
                           predictor=2, blocksize=32)
    with rasterio.open(out) as ds:
        assert ds.overviews(1) == [] and ds.block_shapes[0] == (32, 32)


@pytest.mark.parametrize("options, word", [
    ({"blocksize": 100}, "blocksize"), ({"blocksize": 0}, "blocksize"),
    ({"bigtiff": "maybe"}, "bigtiff"), ({"predictor": 5}, "predictor"),
    ({"overviews": [1.5]}, "overviews"), ({"resampling": "smooth"}, "resampling"),
    ({"compress": 3}, "compress")])
def test_bad_writer_options_name_the_option(tmp_path, options, word):
    with pytest.raises(DeepSegError, match=f"option {word}="):
        GTiffWriter().create(tmp_path / "x.tif", thematic_info(), **options)
    assert not (tmp_path / "x.tif").exists()


def test_writer_errors(tmp_path):
    with pytest.raises(DeepSegError, match="colour table needs dtype uint8 or uint16"):
        GTiffWriter().create(tmp_path / "f.tif", thematic_info().with_(dtype="float32"))
    with pytest.raises(DeepSegError, match="tiled"):
        CogWriter().create(tmp_path / "c.tif", thematic_info(), tiled=False)
    with pytest.raises(DeepSegError, match="bad.tif: cannot create"):
        GTiffWriter().create(tmp_path / "bad.tif", thematic_info().with_(crs="not a crs"))
    with GTiffWriter().create(tmp_path / "w.tif", thematic_info()) as sink:
        with pytest.raises(DeepSegError, match="does not fit"):
            sink.write(np.zeros((2, 8, 8), np.uint8), Window(0, 0, 8, 8))
        with pytest.raises(DeepSegError, match="reaches outside"):
            sink.write(np.zeros((1, 8, 8), np.uint8), Window(148, 0, 8, 8))
        sink.write(np.full((8, 8), 3), Window(0, 0, 8, 8))  # 2-D, int64: cast to uint8
    with GdalReader().open(tmp_path / "w.tif") as src:
        assert (src.read(Window(0, 0, 8, 8)) == 3).all()


def test_failed_cog_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with CogWriter().create(tmp_path / "out.tif", thematic_info()) as sink:
            sink.write(np.ones((1, 8, 8), np.uint8), Window(0, 0, 8, 8))
            raise RuntimeError("prediction crashed")
    assert list(tmp_path.iterdir()) == []


def test_registry_picks_the_builtins():
    registry = load_plugins().registry
    assert isinstance(registry.get("reader", "gdal"), GdalReader)
    assert isinstance(registry.writer_for("out.tif"), GTiffWriter)
    assert isinstance(registry.writer_for("OUT.TIFF"), GTiffWriter)
    assert isinstance(registry.writer_for("out.x", format="cog"), CogWriter)


def test_registry_reader_for_a_real_file(tmp_path):
    path = write_in_windows(GTiffWriter(), tmp_path / "x.tif", thematic_info(), class_map(
        thematic_info()))
    assert isinstance(load_plugins().registry.reader_for(path), GdalReader)


def test_unreadable_rasters_name_the_file(rgb, tmp_path):
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"this is not a GeoTIFF\n" * 50)
    missing = tmp_path / "missing.tif"
    reader = GdalReader()
    assert not reader.can_open(garbage) and not reader.can_open(missing)
    for path in (garbage, missing):
        with pytest.raises(DeepSegError, match=f"{path.name}: not a readable raster") as err:
            reader.open(path)
        assert "\n" not in str(err.value)
    with pytest.raises(RegistryError, match="garbage.tif: no registered reader"):
        load_plugins().registry.reader_for(garbage)
    # header at the end (a plain GeoTIFF): cut short, it does not even open
    cut = tmp_path / "cut.tif"
    cut.write_bytes(rgb.read_bytes()[:100_000])
    with pytest.raises(DeepSegError, match="cut.tif: not a readable raster"):
        reader.open(cut)
    # header first (a COG): it opens, and reading the missing tiles fails clearly
    with GdalReader().open(rgb) as src:
        info, pixels = src.info, src.read()
    cog = write_in_windows(CogWriter(), tmp_path / "cog.tif", info, pixels, step=256)
    short = tmp_path / "short.tif"
    short.write_bytes(cog.read_bytes()[: cog.stat().st_size // 2])
    with reader.open(short) as src:
        with pytest.raises(DeepSegError, match="short.tif: cannot read pixels") as err:
            src.read()
    assert "\n" not in str(err.value)

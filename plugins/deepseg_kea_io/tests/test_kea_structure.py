"""The written HDF5 layout equals libkea's, and GDAL's autotest expectations hold."""

import h5py
import numpy as np
import rasterio
from affine import Affine
from deepseg_kea_io import KeaReader, KeaWriter
from kea_checks import gdal_checksum, tree
from rasterio.crs import CRS

from deepseg_core.contracts.raster import RasterInfo, Window

STATISTICS = ("STATISTICS_MINIMUM", "STATISTICS_MAXIMUM", "STATISTICS_MEAN",
              "STATISTICS_STDDEV", "STATISTICS_HISTONUMBINS")


def rewrite(src, path, block=300, **options):
    """Copy an open source into a new KEA file, window by window."""
    info = src.info
    with KeaWriter().create(path, info, **options) as sink:
        for r in range(0, info.height, block):
            for c in range(0, info.width, block):
                window = Window(r, c, block, block).clip(info.height, info.width)
                sink.write(src.read(window), window)
    return path


def test_rewritten_class_map_has_libkea_structure(shared_data, tmp_path):
    real = shared_data / "rsgislib" / "sen2_20210527_aber_cls.kea"
    with KeaReader().open(real) as src:
        ours = rewrite(src, tmp_path / "cls.kea", overviews=[4, 8, 16])
        expected_pixels = src.read()
    expected, got = tree(real), tree(ours)
    extra = {f"BAND1/METADATA/{name}" for name in STATISTICS}  # we also write statistics
    assert set(got) - set(expected) == extra
    assert {k: v for k, v in got.items() if k not in extra} == expected
    with h5py.File(real, "r") as a, h5py.File(ours, "r") as b:
        for name in ("HEADER/SIZE", "HEADER/TL", "HEADER/RES", "HEADER/ROT", "HEADER/NUMBANDS",
                     "BAND1/DATATYPE", "BAND1/LAYER_TYPE", "BAND1/NO_DATA_VAL",
                     "BAND1/ATT/HEADER/SIZE", "BAND1/ATT/DATA/FLOAT", "BAND1/ATT/DATA/INT"):
            np.testing.assert_array_equal(b[name][()], a[name][()], err_msg=name)
        assert b["HEADER/WKT"][0] == a["HEADER/WKT"][0]
        assert b["BAND1/NO_DATA_VAL"].attrs["NO_DATA_DEFINED"] == 1
        assert b["BAND1/DATA"].attrs["CLASS"] == b"IMAGE"
    with KeaReader().open(ours) as back:
        np.testing.assert_array_equal(back.read(), expected_pixels)


def test_rewritten_multiband_image_has_libkea_structure(shared_data, tmp_path):
    real = shared_data / "rsgislib" / "sen2_20210527_aber_subset_kea.kea"
    with KeaReader().open(real) as src:
        ours = rewrite(src, tmp_path / "subset.kea", statistics=False)
    assert tree(ours) == tree(real)


def test_geotiff_to_kea_keeps_gdal_checksum(shared_data, tmp_path):
    """GDAL autotest kea_1: byte.tif, IMAGEBLOCKSIZE=15, THEMATIC=YES -> checksum 4672."""
    with rasterio.open(shared_data / "rasterio" / "byte.tif") as tif:
        pixels, crs, transform = tif.read(), tif.crs, tif.transform
    assert gdal_checksum(pixels[0]) == 4672
    info = RasterInfo(width=20, height=20, count=1, dtype="uint8", crs=crs.to_wkt(),
                      transform=transform)
    path = tmp_path / "byte.kea"
    with KeaWriter().create(path, info, block_size=15, thematic=True) as sink:
        sink.write(pixels[:, :15], Window(0, 0, 15, 20))
        sink.write(pixels[:, 15:], Window(15, 0, 5, 20))
    with KeaReader().open(path) as src:
        assert gdal_checksum(src.read()[0]) == 4672
        assert CRS.from_wkt(src.info.crs) == crs and src.info.transform == transform
        assert src.info.thematic and src.bands[0].block_size == 15
    with h5py.File(path, "r") as f:
        assert f["BAND1/DATA"].chunks == (15, 15)
        assert f["BAND1/DATA"].attrs["BLOCK_SIZE"] == 15


def test_unwritten_thematic_image_like_gdal_kea_5(tmp_path):
    """GDAL autotest kea_5: 100x100x3, block 15, thematic, nothing written -> checksum 0."""
    info = RasterInfo(width=100, height=100, count=3, dtype="uint8",
                      transform=Affine(1, 0, 0, 0, -1, 0))
    KeaWriter().create(tmp_path / "empty.kea", info, block_size=15, thematic=True).close()
    with KeaReader().open(tmp_path / "empty.kea") as src:
        assert all(b.block_size == 15 and b.thematic for b in src.bands)
        assert [gdal_checksum(band) for band in src.read()] == [0, 0, 0]
        assert src.info.transform.to_gdal() == (0, 1, 0, 0, 0, -1) and src.info.crs is None
    with h5py.File(tmp_path / "empty.kea", "r") as f:
        assert f["HEADER/WKT"][0] == b"" and f["HEADER/FILETYPE"][0] == b"KEA"
        assert f["HEADER/VERSION"][0] == b"1.1" and f["HEADER/NUMBANDS"][0] == 3
        assert list(f["HEADER/SIZE"]) == [100, 100] and "NO_DATA_VAL" not in f["BAND1"]
        assert list(f["BAND3/ATT/HEADER/SIZE"]) == [1, 0, 0, 1, 0]  # histogram: 10000 zeros
        assert f["BAND3/ATT/DATA/FLOAT"][0, 0] == 10000
        assert f["BAND2/DESCRIPTION"][0] == b"Band 2"

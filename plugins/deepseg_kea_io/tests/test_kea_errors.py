"""Every failure a user can meet is one DeepSegError line naming the file and the expectation."""

import h5py
import numpy as np
import pytest
from deepseg_kea_io import KeaReader, KeaWriter

from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.errors import DeepSegError

INFO = RasterInfo(width=8, height=6, count=1, dtype="uint8", nodata=0)


def small_kea(path, info=INFO, **options):
    with KeaWriter().create(path, info, **options) as sink:
        sink.write(np.ones((info.count, info.height, info.width), info.dtype),
                   Window(0, 0, info.height, info.width))
    return path


def test_a_kea_that_is_not_hdf5(tmp_path):
    path = tmp_path / "text.kea"
    path.write_text("not an image")
    assert not KeaReader().can_open(path)
    with pytest.raises(DeepSegError, match=r"text\.kea: not a KEA file: expected an HDF5 file"):
        KeaReader().open(path)


def test_a_missing_file(tmp_path):
    with pytest.raises(DeepSegError, match=r"nothere\.kea: file not found"):
        KeaReader().open(tmp_path / "nothere.kea")


def test_hdf5_that_is_not_kea(tmp_path):
    path = tmp_path / "other.kea"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=[1, 2, 3])
    assert KeaReader().can_open(path)  # GDAL's identify is signature + suffix only
    with pytest.raises(DeepSegError, match=r"other\.kea: an HDF5 file but not a KEA image: "
                                           r"/HEADER/FILETYPE is missing \(expected 'KEA'\)"):
        KeaReader().open(path)
    with h5py.File(path, "a") as f:
        f.create_dataset("HEADER/FILETYPE", data=[b"NOTKEA"], dtype=h5py.string_dtype())
    with pytest.raises(DeepSegError, match=r"/HEADER/FILETYPE is 'NOTKEA' \(expected 'KEA'\)"):
        KeaReader().open(path)


def test_wrong_suffix_is_not_claimed(tmp_path):
    path = small_kea(tmp_path / "image.kea")
    renamed = path.rename(tmp_path / "image.h5")
    assert not KeaReader().can_open(renamed)
    assert KeaReader().can_open(small_kea(tmp_path / "UPPER.KEA"))


@pytest.mark.parametrize("code", [0, 11, 99])
def test_unsupported_datatype_code(tmp_path, code):
    path = small_kea(tmp_path / "code.kea")
    with h5py.File(path, "r+") as f:
        f["BAND1/DATATYPE"][0] = code
    with pytest.raises(DeepSegError, match=rf"code\.kea: band 1 has unsupported KEA datatype "
                                           rf"code {code} \(expected 1\.\.10"):
        KeaReader().open(path)


def test_unsupported_version(tmp_path):
    path = small_kea(tmp_path / "v.kea")
    with h5py.File(path, "r+") as f:
        f["HEADER/VERSION"][0] = b"9.0"
    with pytest.raises(DeepSegError, match=r"v\.kea: unsupported KEA version '9\.0'"):
        KeaReader().open(path)


def test_truncated_file(shared_data, tmp_path):
    data = (shared_data / "rsgislib" / "sen2_20210527_aber_cls.kea").read_bytes()
    path = tmp_path / "cut.kea"
    path.write_bytes(data[:len(data) // 2])
    assert KeaReader().can_open(path)
    with pytest.raises(DeepSegError, match=r"cut\.kea: cannot open the KEA \(HDF5\) file "
                                           r"\(truncated or corrupt file\?\): .*truncated"):
        KeaReader().open(path)


def test_reading_bad_bands_windows_and_levels(tmp_path):
    with KeaReader().open(small_kea(tmp_path / "r.kea")) as src:
        with pytest.raises(DeepSegError, match=r"r\.kea: no band 2 \(the raster has 1\)"):
            src.read(bands=[2])
        with pytest.raises(DeepSegError, match=r"negative size"):
            src.read(Window(0, 0, -1, 3))
        with pytest.raises(DeepSegError, match=r"band 1 has no overview 1 \(it has 0\)"):
            src.read_overview(1, 1)


@pytest.mark.parametrize("info, options, message", [
    (INFO.with_(dtype="complex64"), {}, r"KEA cannot store dtype complex64"),
    (INFO.with_(dtype="bool"), {}, r"KEA cannot store dtype bool"),
    (INFO.with_(nodata=-1), {}, r"nodata -1 does not fit dtype uint8"),
    (INFO.with_(nodata=0.5), {}, r"nodata 0.5 does not fit dtype uint8"),
    (INFO.with_(colormap={1: (1, 2, 300)}), {}, r"colour table entry 1"),
    (INFO.with_(metadata={"a/b": "x"}), {}, r"metadata key 'a/b' cannot be stored"),
    (INFO.with_(crs="not a crs"), {}, r"crs 'not a crs' is not a coordinate reference system"),
    (INFO, {"compress": "lzw"}, r"unknown KEA writer option 'compress' \(accepted: "),
    (INFO, {"block_size": 0}, r"block_size=0: expected an integer in 1\.\.65535"),
    (INFO, {"deflate": 10}, r"deflate=10: expected an integer in 0\.\.9"),
    (INFO, {"overviews": [1]}, r"overviews=\[1\]: expected none, 'auto' or a list"),
    (INFO, {"overviews": [16]}, r"overviews=\[16\]: expected factors that leave"),
    (INFO, {"resampling": "cubic"}, r"resampling='cubic': expected 'nearest' or 'average'"),
    (INFO, {"thematic": "yes"}, r"thematic='yes': expected true or false"),
])
def test_writer_rejects_what_kea_cannot_hold(tmp_path, info, options, message):
    with pytest.raises(DeepSegError, match=r"w\.kea: .*" + message):
        KeaWriter().create(tmp_path / "w.kea", info, **options)
    assert not (tmp_path / "w.kea").exists()  # checked before the file is created


def test_writes_outside_or_of_the_wrong_shape(tmp_path):
    sink = KeaWriter().create(tmp_path / "s.kea", INFO)
    with pytest.raises(DeepSegError, match=r"s\.kea: .* reaches outside the 6 x 8 raster"):
        sink.write(np.zeros((1, 2, 2), "uint8"), Window(5, 0, 2, 2))
    with pytest.raises(DeepSegError, match=r"array of shape \(2, 2, 2\) does not fit"):
        sink.write(np.zeros((2, 2, 2), "uint8"), Window(0, 0, 2, 2))
    sink.close()
    sink.close()  # twice: nothing
    with pytest.raises(DeepSegError, match=r"s\.kea: the KEA file is already closed"):
        sink.write(np.zeros((1, 2, 2), "uint8"), Window(0, 0, 2, 2))


def test_an_exception_inside_the_with_block_leaves_no_open_file(tmp_path):
    path = tmp_path / "abort.kea"
    with pytest.raises(RuntimeError):
        with KeaWriter().create(path, INFO) as sink:
            sink.write(np.ones((1, 6, 8), "uint8"), Window(0, 0, 6, 8))
            raise RuntimeError("model crashed")
    path.unlink()  # closed: removable, and a new file can take its place
    small_kea(path)


def test_a_damaged_chunk_fails_only_the_windows_that_touch_it(tmp_path):
    info = RasterInfo(width=64, height=64, count=1, dtype="uint16")
    path = tmp_path / "damaged.kea"
    rng = np.random.default_rng(0)
    with KeaWriter().create(path, info, block_size=32, statistics=False) as sink:
        sink.write(rng.integers(0, 5000, (1, 64, 64), dtype="uint16"), Window(0, 0, 64, 64))
    with h5py.File(path, "r") as f:  # the last chunk: rows 32.., cols 32..
        chunk = f["BAND1/DATA"].id.get_chunk_info_by_coord((32, 32))
    with open(path, "r+b") as fh:
        fh.seek(chunk.byte_offset + 4)
        fh.write(b"\xff" * 64)
    with KeaReader().open(path) as src:
        assert src.read(Window(0, 0, 32, 64)).shape == (1, 32, 64)  # reads only its chunks
        with pytest.raises(DeepSegError, match=r"damaged\.kea: cannot read pixels of Window\(.*"
                                               r"\(truncated or corrupt file\?\)"):
            src.read(Window(40, 40, 4, 4))

"""PyTorch state-dict files read without PyTorch: both torch.save layouts, only tensors."""

import io
import pickle
import zipfile

import numpy as np
import pytest

from deepseg_core.errors import DeepSegError
from deepseg_core.models.statedict import read_state_dict
from deepseg_core.testing.torch_pth import state_pickle, write_state_dict


def arrays():
    rng = np.random.default_rng(0)
    return {"conv.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
            "bn.running_var": rng.random(4).astype(np.float64),
            "bn.num_batches_tracked": np.array(7, dtype=np.int64),
            "half": rng.normal(size=(2, 5)).astype(np.float16),
            "mask": np.arange(6, dtype=np.uint8).reshape(3, 2)}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_both_layouts_read_back_every_tensor_with_its_shape_and_dtype(tmp_path, legacy):
    path = tmp_path / "weights.pth"
    write_state_dict(path, arrays(), legacy=legacy)
    back = read_state_dict(str(path))
    assert list(back) == list(arrays())
    for key, value in arrays().items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape
        np.testing.assert_array_equal(back[key], value)


def test_views_with_offsets_and_strides_read_the_right_numbers(tmp_path):
    # a transposed view into a shared storage: offset 2, strides (1, 2) over 8 numbers
    data = state_pickle({"w": np.zeros((2, 3), np.float32)})
    data = data.replace(b"J\x06\0\0\0tQJ\0\0\0\0", b"J\x08\0\0\0tQJ\x02\0\0\0")
    data = data.replace(b"(J\x03\0\0\0J\x01\0\0\0t", b"(J\x01\0\0\0J\x02\0\0\0t")
    path = tmp_path / "view.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("view/data.pkl", data)
        archive.writestr("view/data/0", np.arange(8, dtype="<f4").tobytes())
    np.testing.assert_array_equal(read_state_dict(str(path))["w"], [[2, 4, 6], [3, 5, 7]])


class Exploit:
    def __reduce__(self):
        import os

        return os.system, ("touch pwned",)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_pickle_that_names_os_system_is_refused_and_nothing_runs(tmp_path, monkeypatch,
                                                                   legacy):
    monkeypatch.chdir(tmp_path)
    evil = b"cos\nsystem\n(S'touch pwned'\ntR."  # os.system('touch pwned'), protocol 0
    path = tmp_path / "evil.pth"
    if legacy:
        path.write_bytes(b"".join(pickle.dumps(v, protocol=2) for v in
                                  (0x1950A86A20F9469CFC6C, 1001, {})) + evil)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("evil/data.pkl", evil)
    with pytest.raises(DeepSegError) as error:
        read_state_dict(str(path))
    assert str(error.value) == (f"{path}: refused: its pickle names os.system, which a PyTorch "
                                "state dict of tensors never needs (nothing was run)")
    assert not (tmp_path / "pwned").exists()
    # the same through Python's own pickling of a callable (posix.system on Linux)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"w": Exploit()}, protocol=2))
    with pytest.raises(DeepSegError, match=r"refused: its pickle names (posix|os|nt)\.system"):
        read_state_dict(str(path))
    assert not (tmp_path / "pwned").exists()


def test_a_global_inside_the_legacy_header_is_refused_too(tmp_path):
    path = tmp_path / "header.pth"
    path.write_bytes(pickle.dumps(io.BytesIO, protocol=2))
    with pytest.raises(DeepSegError, match=r"refused: its pickle names _io\.BytesIO"):
        read_state_dict(str(path))


@pytest.mark.parametrize("content,message", [
    (b"PK\x03\x04 not really a zip", "not a PyTorch state dict"),
    (b"plain text, not a pickle", "not a PyTorch state dict"),
    (pickle.dumps(12345, protocol=2), "neither a zip archive nor the legacy torch.save format"),
])
def test_files_of_other_kinds_are_one_line_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "other.pth"
    path.write_bytes(content)
    with pytest.raises(DeepSegError, match=message) as error:
        read_state_dict(str(path))
    assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


def test_a_zip_without_the_pickle_or_a_storage_is_named(tmp_path):
    path = tmp_path / "w.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w/version", "3\n")
    with pytest.raises(DeepSegError, match="a zip without data.pkl"):
        read_state_dict(str(path))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w/data.pkl", state_pickle({"conv.weight": np.zeros((2, 2), "f4")}))
        archive.writestr("w/data/0", b"\0" * 8)  # 2 of the 4 numbers
    with pytest.raises(DeepSegError, match=f"{path}: the numbers of 'conv.weight' \\(storage 0\\) "
                                           "are missing or cut short"):
        read_state_dict(str(path))


def test_something_else_than_tensors_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x/data.pkl", pickle.dumps({"epoch": 3}, protocol=2))
    with pytest.raises(DeepSegError, match="no mapping of names to tensors"):
        read_state_dict(str(path))
    with pytest.raises(DeepSegError, match="nowhere.pth: cannot read"):
        read_state_dict(str(tmp_path / "nowhere.pth"))

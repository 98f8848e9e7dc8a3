"""Store integrity: checksummed chunks, a verified reuse, damaged tiles named, foreign stores kept.

Faults come from outside: bytes overwritten in the middle of a real store, the CLI in a
subprocess.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import yaml

from deepseg_core.errors import DeepSegError
from deepseg_core.store import Store
from tests.support.cli import assert_one_line_error, deepseg
from tests.support.damage import flip_bit, overwrite, overwrite_middle
from tests.support.synthetic import squares_scene, write_experiment


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("integrity")
    image, gpkg, _ = squares_scene(folder, size=128)
    return folder, image, gpkg


def experiment(folder, image, gpkg, name="exp", **overrides):
    overrides.setdefault("epochs", 1)
    overrides.setdefault("training", {"batch_size": 4, "seed": 1, "steps_per_epoch": 2})
    return write_experiment(folder, image, gpkg, name=name, **overrides)


def built_store(scene, tmp_path, name="exp", **overrides):
    folder, image, gpkg = scene
    exp = experiment(tmp_path, image, gpkg, name=name,
                     store={"path": str(tmp_path / "store.h5")}, **overrides)
    done = deepseg("dataprep", exp)
    assert done.returncode == 0, done.stderr
    return exp, tmp_path / "store.h5"


def test_every_dataset_of_the_store_carries_checksums(scene, tmp_path):
    _, store = built_store(scene, tmp_path)
    names = []
    with h5py.File(store, "r") as file:
        file.visititems(lambda n, o: names.append((n, o.fletcher32))
                        if isinstance(o, h5py.Dataset) else None)
    assert {"images", "labels", "valid", "tiles", "stats/mean", "class_counts"} <= \
        {n for n, _ in names}
    assert all(checked for _, checked in names), names


@pytest.mark.faults
def test_a_damaged_store_is_found_by_dataprep_and_rebuilt(scene, tmp_path):
    exp, store = built_store(scene, tmp_path)
    with Store(store) as good:
        expected = good.file["images"][:]
    overwrite_middle(store)
    with Store(store) as damaged, pytest.raises(DeepSegError, match="is damaged"):
        damaged.verify()
    done = deepseg("dataprep", exp)
    assert done.returncode == 0, done.stderr
    assert "is damaged" in done.stdout and "rebuilding" in done.stdout, done.stdout
    assert "reusing" not in done.stdout
    with Store(store) as rebuilt:
        rebuilt.verify()
        np.testing.assert_array_equal(rebuilt.file["images"][:], expected)
    again = deepseg("dataprep", exp)
    assert "reusing store" in again.stdout and "checksums verified" in again.stdout


@pytest.mark.faults
def test_a_damaged_tile_found_by_train_names_the_tile_and_the_fix(scene, tmp_path):
    exp, store = built_store(scene, tmp_path)
    with h5py.File(store, "r") as file:  # damage a tile's chunk, not the tile table
        ds = file["images"]
        index = ds.shape[0] // 2
        offset = ds.id.get_chunk_info(index).byte_offset
    overwrite(store, offset + 16, b"\x5a" * 64)
    done = deepseg("train", exp)
    line = assert_one_line_error(done, str(store), f"tile {index}", "is damaged",
                                 "rerun 'deepseg dataprep'")
    assert "OSError" not in done.stderr, line


def test_store_path_of_other_settings_is_an_error_naming_both_hashes(scene, tmp_path):
    exp, store = built_store(scene, tmp_path)
    before = store.read_bytes()
    with Store(store) as old:
        old_hash = old.attrs["settings_hash"]
    other = yaml.safe_load(exp.read_text())
    other["overlap"] = 4
    exp.write_text(yaml.safe_dump(other))
    done = deepseg("dataprep", exp)
    line = assert_one_line_error(done, str(store), old_hash, "store.replace: true")
    new_hash = line.split("this experiment's is ")[1].split(")")[0]
    assert len(new_hash) == 64 and new_hash != old_hash
    assert store.read_bytes() == before  # the other experiment's store is untouched
    other["store"]["replace"] = True
    exp.write_text(yaml.safe_dump(other))
    done = deepseg("dataprep", exp)
    assert done.returncode == 0, done.stderr
    assert "replacing it" in done.stdout
    with Store(store) as replaced:
        assert replaced.attrs["settings_hash"] == new_hash


def test_store_path_naming_a_file_that_is_no_store_is_left_alone(scene, tmp_path):
    folder, image, gpkg = scene
    precious = tmp_path / "notes.h5"
    precious.write_bytes(b"not hdf5 at all" * 100)
    exp = experiment(tmp_path, image, gpkg, store={"path": str(precious)})
    done = deepseg("dataprep", exp)
    assert_one_line_error(done, str(precious), "not a readable store", "store.replace: true")
    assert precious.read_bytes() == b"not hdf5 at all" * 100


@pytest.mark.parametrize("nbytes", [1, 2, 3, 4097, 65535 * 2 + 1])
def test_fletcher32_equals_hdf5s_own_checksum(tmp_path, nbytes):
    from deepseg_core.store.checksums import fletcher32

    rng = np.random.default_rng(nbytes)
    cases = [rng.integers(0, 256, nbytes), np.full(nbytes, 255), np.zeros(nbytes)]
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as file:
        for i, data in enumerate(cases):
            file.create_dataset(f"d{i}", data=data.astype(np.uint8), chunks=(max(nbytes, 1),),
                                fletcher32=True, maxshape=(None,))
    raw = path.read_bytes()
    with h5py.File(path, "r") as file:
        for i in range(len(cases)):
            info = file[f"d{i}"].id.get_chunk_info(0)
            chunk = raw[info.byte_offset:info.byte_offset + info.size]
            assert fletcher32(chunk[:-4]) == int.from_bytes(chunk[-4:], "little")


@pytest.mark.faults
def test_verify_names_the_damaged_tile_without_decompressing(scene, tmp_path):
    _, store = built_store(scene, tmp_path)
    with h5py.File(store, "r") as file:
        info = file["labels"].id.get_chunk_info(5)
    flip_bit(store, info.byte_offset + info.size // 2)  # in tile 5's label chunk
    with Store(store) as damaged, pytest.raises(DeepSegError) as caught:
        damaged.verify()
    assert "tile 5 (labels) is damaged (Fletcher32 checksum mismatch)" in str(caught.value)

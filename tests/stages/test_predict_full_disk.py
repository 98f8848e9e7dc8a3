"""Prediction on a real full disk (a small tmpfs) and a read-only one: one-line errors, no
traceback, nothing that passes for finished, and a rerun with space completes.

The CLI runs in subprocesses with the NumPy test models (no TensorFlow to start: the fault is
in the writing, not in the model; tests/stages/test_predict.py covers the Keras models)."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.cli import deepseg
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, squares_scene

KB = 1024
OUTPUTS = {  # name: predict settings, output file name
    "geotiff": ({"probabilities": "float32"}, "prediction.tif"),
    "cog": ({"probabilities": "float32", "format": "cog"}, "prediction.tif"),
    "kea": ({"probabilities": "float32"}, "prediction.kea"),
    "vectors": ({"vectorize": {"enabled": True, "skip_classes": []}}, "prediction.tif"),
    "instances": ({}, "blobs.tif"),
}

pytestmark = pytest.mark.faults


def setup(tmp_path, registry, name, disk):
    settings, filename = OUTPUTS[name]
    img, _, _ = squares_scene(tmp_path, size=260, nsquares=30, seed=3)
    over = dict(model="numpyfcn", tilesize=32, overlap=8)
    if name == "instances":
        over = dict(model="numpyblobs", segmentation_type="instance", tilesize=64, overlap=32,
                    classes=[{"name": "background"}, {"name": "blob"}])
    exp = predict_experiment(tmp_path, img,
                             predict={**settings, "output": str(disk / filename)}, **over)
    save_untrained(exp, registry, img)
    return exp


def run(*args):
    """``deepseg ARGS`` with the test models, its output in stdout."""
    return deepseg(*args, test_models=True, merged=True)


def files(folder) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()
            if not p.name.endswith(".gpkg")} | {p.name: "gpkg" for p in folder.glob("*.gpkg")}


def failed_cleanly(done, disk) -> str:
    lines = done.stdout.strip().splitlines()
    assert done.returncode != 0 and done.returncode < 128, done.stdout  # no signal, no segfault
    assert "Traceback" not in done.stdout, done.stdout
    assert lines and lines[-1].startswith("error: ") and str(disk) in lines[-1], done.stdout
    return lines[-1]


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_a_full_disk_is_an_error_and_a_rerun_with_space_completes(tmp_path, registry, small_disk,
                                                                   name):
    disk = small_disk(8 * 1024 * KB)
    exp = setup(tmp_path, registry, name, disk.path)
    path = str(exp.source)
    assert run("predict", path).returncode == 0
    reference = files(disk.path)
    total = sum((disk.path / n).stat().st_size for n in reference)
    for n in reference:
        (disk.path / n).unlink()
    # the disk fills up at a quarter, half, 90 % of the outputs' size: each run fails with
    # one line, or succeeds with outputs equal to the reference; never anything in between
    failures = 0
    for fraction in (0.25, 0.5, 0.9):
        disk.resize(max(int(total * fraction) // 4096 * 4096, 4096))
        done = run("predict", path)
        if done.returncode == 0:
            assert files(disk.path) == reference, done.stdout
            break
        message = failed_cleanly(done, disk.path)
        assert any(cause in message.lower() for cause in (
            "no space left on device", "disk is full", "failed to commit transaction")), message
        finished = [n for n in reference if (disk.path / n).exists()]
        assert not finished, f"{finished} passed for finished after: {message}"
        failures += 1
    assert failures >= 2
    disk.resize(8 * 1024 * KB)
    done = run("predict", path)
    assert done.returncode == 0, done.stdout
    assert files(disk.path) == reference


def test_a_read_only_output_folder_is_an_error(tmp_path, registry, small_disk):
    disk = small_disk(4 * 1024 * KB)
    exp = setup(tmp_path, registry, "geotiff", disk.path)
    disk.read_only()
    message = failed_cleanly(run("predict", str(exp.source)), disk.path)
    assert "Read-only file system" in message, message
    disk.read_only(False)
    assert run("predict", str(exp.source)).returncode == 0

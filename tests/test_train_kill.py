"""Training killed with SIGKILL at seeded random moments, rerun with resume, equals one run.

``deepseg train`` runs in a subprocess; the kill comes from outside. Each rerun sets
``training.resume: true`` once a checkpoint record exists (as a user would). The final
weights, the CSV log, curves.png and the record must equal the uninterrupted run's bit for
bit (CPU, fixed seed); TensorBoard event files are not compared (they hold wall times).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from scenes import squares_scene, write_experiment

KILLS = 10  # at least, over rounds that each end equal to the uninterrupted run


def command(path: Path) -> subprocess.Popen:
    script = Path(sys.executable).with_name("deepseg")
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "deepseg_core.cli"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*exe, "train", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def set_resume(path: Path, resume: bool) -> None:
    settings = yaml.safe_load(path.read_text())
    settings["training"]["resume"] = resume
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


def model_weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


def same_run(a: Path, b: Path) -> None:
    """The outputs of two runs are equal bit for bit (TensorBoard and hashes aside)."""
    for name in ("last.keras", "best.keras"):
        wa, wb = model_weights(a / "model" / name), model_weights(b / "model" / name)
        assert all(np.array_equal(x, y) for x, y in zip(wa, wb)), name
    for name in ("logs/training.csv", "logs/curves.png", "model/model.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ra, rb = (json.loads((d / "model" / "state.json").read_text()) for d in (a, b))
    ra.pop("files"), rb.pop("files")  # .keras files hold their save date
    assert ra == rb
    assert not list((b / "model").glob("*.pending.keras"))


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kill")
    img, gpkg, _ = squares_scene(folder, size=160, nsquares=20)
    over = dict(epochs=5, model={"name": "unet64", "filters": 2, "depth": 1},
                training={"batch_size": 4, "seed": 3, "reduce_lr": 1})
    paths = [write_experiment(folder, img, gpkg, name=n, **over) for n in ("whole", "killed")]
    from deepseg_core.config import load_experiment
    from deepseg_core.plugins import load_plugins
    from deepseg_core.stages import dataprep

    dataprep.run(load_experiment(paths[0]), load_plugins().registry)
    return folder, paths


def test_sigkilled_training_resumes_to_the_uninterrupted_run(experiments):
    folder, (whole, killed) = experiments
    start = time.monotonic()
    proc = command(whole)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    duration = time.monotonic() - start

    rng = np.random.default_rng(13)
    outdir = folder / "runs" / "killed"
    state = outdir / "model" / "state.json"
    kills, advanced, rounds, runs = 0, 0, 0, 0
    while kills < KILLS:  # rounds: kill and rerun until a rerun completes, then compare
        shutil.rmtree(outdir, ignore_errors=True)
        rounds, last_epoch = rounds + 1, 0
        while True:
            set_resume(killed, state.exists())
            proc, runs = command(killed), runs + 1
            try:
                proc.wait(timeout=float(rng.uniform(0.5, duration)))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            out, _ = proc.communicate(timeout=600)
            if proc.returncode == 0:
                break
            assert proc.returncode == -signal.SIGKILL, out[-3000:]
            if state.exists():
                epoch = json.loads(state.read_text())["epoch"]
                advanced += epoch > last_epoch
                last_epoch = epoch
            assert runs < 60
        same_run(folder / "runs" / "whole", outdir)
    print(f"kills: {kills}, runs: {runs}, rounds resumed equal: {rounds} of {rounds}, "
          f"kills after which the record had advanced: {advanced}")


def test_a_damaged_checkpoint_is_never_taken_for_the_committed_one(experiments, tmp_path):
    folder, (whole, _) = experiments
    from deepseg_core.errors import DeepSegError
    from deepseg_core.training.callbacks import load_resume_state

    settings = yaml.safe_load(whole.read_text())  # a run of its own: no test order assumed
    settings["name"] = "damaged"
    own = folder / "damaged.yaml"
    own.write_text(yaml.safe_dump(settings, sort_keys=False))
    proc = command(own)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    model_dir = folder / "runs" / "damaged" / "model"
    copy = tmp_path / "model"
    copy.mkdir()
    for p in model_dir.iterdir():
        copy.joinpath(p.name).write_bytes(p.read_bytes())
    last = copy / "last.keras"
    data = bytearray(last.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\0" * 64  # bytes overwritten mid-file
    last.write_bytes(bytes(data))
    with pytest.raises(DeepSegError, match=r"last.keras: does not match the checkpoint "
                                           r"record .*state.json \(damaged or replaced\)"):
        load_resume_state(copy, None)
    # a committed checkpoint still pending (killed before its rename) is found and used
    last.write_bytes((model_dir / "last.keras").read_bytes())
    last.rename(copy / "last.pending.keras")
    from deepseg_core.plugins import load_plugins

    plugin = load_plugins().registry.get("model", "unet64")
    model, record = load_resume_state(copy, plugin)
    assert record["epoch"] == 5 and model.optimizer.iterations.numpy() == record["iterations"]


@pytest.mark.parametrize("size, culprit", [("24k", "logs/curves.png"),
                                           ("150k", "model/last.keras")])
def test_a_full_disk_is_one_line_and_a_rerun_with_space_completes(experiments, tmp_path,
                                                                  size, culprit):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder, (whole, _) = experiments
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(small)],
                   check=True)
    try:
        settings = yaml.safe_load(whole.read_text())
        settings.update(name="full", workdir=str(small), epochs=2,
                        store={"path": str(next((folder / "runs" / "stores").glob("*.h5")))})
        path = tmp_path / "full.yaml"
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
        proc = command(path)
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode != 0 and "Traceback" not in out, out[-3000:]
        last = out.strip().splitlines()[-1]  # the callbacks' or the atomic writer's wording
        assert last.startswith(f"error: {small / 'full' / culprit}: cannot write "), last
        assert "(No space left on device); free space" in last and "rerun" in last, last
        assert not list(small.rglob("*.pending.keras")) and not list(small.rglob("*.tmp*"))
        subprocess.run(["mount", "-o", "remount,size=8m", str(small)], check=True)
        proc = command(path)
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        assert json.loads((small / "full" / "model" / "state.json").read_text())["epoch"] == 2
    finally:
        subprocess.run(["umount", str(small)], check=True)

"""Training processes for the distributed tests, on TensorFlow's strategies and on JAX's:
start them (tests/support/train_worker.py), collect them, and hold a resumed run against the
uninterrupted one."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from deepseg_core.config import load_experiment
from deepseg_core.plugins import load_plugins
from deepseg_core.stages import dataprep
from tests.support.cli import environment
from tests.support.synthetic import write_experiment

WORKER = [sys.executable, "-m", "tests.support.train_worker"]


def experiment(scene, name: str, **training):
    """A prepared 3-epoch tinyfcn experiment over ``scene`` (folder, image, labels)."""
    folder, img, gpkg = scene
    path = write_experiment(folder, img, gpkg, name=name, epochs=3, model="tinyfcn",
                            learning_rate=0.01, training={"seed": 5, "loss": "ce", **training})
    exp = load_experiment(path)
    dataprep.run(exp, load_plugins().registry)
    return path, exp


def spawn(path: Path, weights: Path, **env: str) -> subprocess.Popen:
    """One training process, its final weights saved to ``weights``; its temporary files in
    ``tmp-<weights' stem>`` beside them."""
    scratch = weights.parent / f"tmp-{weights.stem}"
    scratch.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([*WORKER, str(path), str(weights)],
                            env=environment(**{"TMPDIR": str(scratch), **env}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs, timeout: float = 600) -> list[tuple[int, str]]:
    """(exit code, stdout + stderr) of each process; one that outlives ``timeout`` is killed."""
    done = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        done.append((proc.returncode, out + err))
    return done


def weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


def rows(exp) -> list[dict]:
    with open(exp.outdir / "logs" / "training.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def kill_second_after_an_epoch(exp, procs) -> None:
    """SIGKILL worker 1 once a first epoch is committed, a little into the next."""
    state = exp.outdir / "model" / "state.json"
    deadline = time.monotonic() + 300
    while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
        assert time.monotonic() < deadline and procs[1].poll() is None
        time.sleep(0.2)
    time.sleep(0.5)  # into the next epoch
    procs[1].send_signal(signal.SIGKILL)


def resumes_to_the_uninterrupted_run(procs, path: Path, exp, whole, folder: Path,
                                     start: Callable[[Path, Path], list]) -> None:
    """After the kill: the run stopped between epochs 1 and 3; rerun with resume: true by
    ``start(path, folder)``, it equals ``whole`` (weights of both workers, training.csv)."""
    finish(procs)
    done = json.loads((exp.outdir / "model" / "state.json").read_text())["epoch"]
    assert 1 <= done < 3
    settings = yaml.safe_load(path.read_text())
    settings["training"]["resume"] = True
    path.write_text(yaml.safe_dump(settings))
    results = finish(start(path, folder))
    assert [rc for rc, _ in results] == [0, 0], "\n".join(t[-3000:] for _, t in results)
    mine, theirs = weights(folder / "w-0.npz"), weights(folder / "whole" / "w-0.npz")
    assert all(np.array_equal(a, b) for a, b in zip(mine, theirs))
    assert all(np.array_equal(a, b) for a, b in zip(mine, weights(folder / "w-1.npz")))
    assert [r["epoch"] for r in rows(exp)] == ["0", "1", "2"]
    assert (exp.outdir / "logs" / "training.csv").read_bytes() == (
        whole.outdir / "logs" / "training.csv").read_bytes()

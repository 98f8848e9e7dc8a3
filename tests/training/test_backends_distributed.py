"""Distributed training on JAX, on CPU: ``mirrored`` over several XLA host devices
(keras.distribution.DataParallel) and ``multiworker`` over two processes of a Slurm step
(jax.distributed, gloo), with the guarantees of the TensorFlow strategies
(tests/training/test_distributed.py): equal weights on every worker, equal to one device at the same
global batch, only the chief writes, and a killed worker's run resumes to the uninterrupted
one bit for bit.

Tolerance against one device: the same tiles and augmentations reach every step; only the
order of the float32 sums differs (per-device partial gradients all-reduced), ~1e-8 of a
weight here (measured below 1e-7), far below one step's change (~1e-3).
Runs on JAX only: `pytest --backend jax` or `nox -s jax`.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from deepseg_core.backend import current
from tests.support.synthetic import squares_scene
from tests.support.workers import (
    experiment,
    finish,
    kill_second_after_an_epoch,
    resumes_to_the_uninterrupted_run,
    rows,
    spawn,
    weights,
)

pytestmark = pytest.mark.skipif(current() != "jax", reason="JAX only (pytest --backend jax)")
ONE_THREAD = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false", "OMP_NUM_THREADS": "1",
              "KERAS_BACKEND": "jax"}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jaxdist")
    img, gpkg, _ = squares_scene(folder, size=160, nsquares=20)
    return folder, img, gpkg


def slurm_step(index: int, port: int) -> dict[str, str]:
    """The variables srun gives task ``index`` of a two-task step on this one node."""
    return {"SLURM_PROCID": str(index), "SLURM_LOCALID": str(index), "SLURM_JOB_ID":
            str((port - 20000) // 10), "SLURM_STEP_NUM_TASKS": "2",
            "SLURM_STEP_NODELIST": "localhost", "SLURM_STEP_TASKS_PER_NODE": "2",
            "CUDA_VISIBLE_DEVICES": ""}


def coordinator_port() -> int:
    """A free port that the Slurm step's job id maps to (20000 + job id % 4000 x 10)."""
    for port in range(20000 + 10 * (os.getpid() % 3000), 60000, 10):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def run(path: Path, weights: Path, **env: str) -> subprocess.Popen:
    """One JAX training process on one thread, its final weights saved to ``weights``."""
    return spawn(path, weights, **{**ONE_THREAD, **env})


def workers(path: Path, folder: Path) -> list[subprocess.Popen]:
    port = coordinator_port()
    return [run(path, folder / f"w-{i}.npz", **slurm_step(i, port)) for i in (0, 1)]


def single(scene, tmp_path) -> tuple[list[np.ndarray], list[dict]]:
    path, exp = experiment(scene, "single", batch_size=8)
    [(rc, text)] = finish([run(path, tmp_path / "single.npz")])
    assert rc == 0, text[-3000:]
    return weights(tmp_path / "single.npz"), rows(exp)


def test_mirrored_over_two_devices_equals_one_device_at_the_same_global_batch(scene, tmp_path):
    one, one_log = single(scene, tmp_path)
    path, exp = experiment(scene, "mirrored", batch_size=4, distribute="mirrored")
    flags = ONE_THREAD["XLA_FLAGS"] + " --xla_force_host_platform_device_count=2"
    [(rc, text)] = finish([run(path, tmp_path / "mirrored.npz", XLA_FLAGS=flags)])
    assert rc == 0, text[-3000:]
    assert "global batch 8 = batch_size 4 x 2 replica(s)" in text
    assert all(np.allclose(a, b, rtol=0, atol=1e-6)
               for a, b in zip(weights(tmp_path / "mirrored.npz"), one))
    for mine, theirs in zip(rows(exp), one_log):
        for key in ("loss", "miou", "val_loss", "val_miou"):
            assert float(mine[key]) == pytest.approx(float(theirs[key]), rel=1e-5), key


def test_two_processes_equal_each_other_and_one_process_and_only_the_chief_writes(scene,
                                                                                  tmp_path):
    one, one_log = single(scene, tmp_path)
    path, exp = experiment(scene, "two", batch_size=4, distribute="multiworker")
    results = finish(workers(path, tmp_path))
    assert [rc for rc, _ in results] == [0, 0], "\n".join(t[-3000:] for _, t in results)
    assert "worker 1 of 2, 2 replica(s) in sync" in results[1][1]
    w0, w1 = weights(tmp_path / "w-0.npz"), weights(tmp_path / "w-1.npz")
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))
    assert all(np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(w0, one))
    for mine, theirs in zip(rows(exp), one_log):  # validation metrics are global
        for key in ("loss", "miou", "val_loss", "val_miou", "val_accuracy"):
            assert float(mine[key]) == pytest.approx(float(theirs[key]), rel=1e-5), key
    files = sorted(str(p.relative_to(exp.outdir)) for p in exp.outdir.rglob("*")
                   if p.is_file() and "tensorboard" not in p.parts)
    assert files == ["experiment.yaml", "logs/curves.png", "logs/training.csv",
                     "model/best.keras", "model/last.keras", "model/model.json",
                     "model/state.json"]
    assert len(list((exp.outdir / "logs" / "tensorboard").rglob("events.*"))) == 2
    assert not list((tmp_path / "tmp-w-1").iterdir())


@pytest.mark.faults
def test_a_killed_worker_and_a_rerun_resume_both_to_the_uninterrupted_run(scene, tmp_path):
    whole_path, whole = experiment(scene, "whole", batch_size=4, distribute="multiworker")
    assert [rc for rc, _ in finish(workers(whole_path, tmp_path / "whole"))] == [0, 0]
    path, exp = experiment(scene, "killed", batch_size=4, distribute="multiworker")
    procs = workers(path, tmp_path)
    kill_second_after_an_epoch(exp, procs)
    [(rc, text)] = finish(procs[:1], timeout=180)  # JAX's coordination service notices
    assert rc != 0 and "Traceback" not in text.strip().splitlines()[-1]
    resumes_to_the_uninterrupted_run(procs, path, exp, whole, tmp_path, workers)


def test_multiworker_without_a_cluster_names_the_variables(monkeypatch):
    from deepseg_core.errors import DeepSegError
    from deepseg_core.training.backend_jax import coordinator

    for var in ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "JAX_COORDINATOR_ADDRESS",
                "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(DeepSegError, match="multiworker needs a cluster: start one task per "
                       "worker with srun .* or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
                       "JAX_PROCESS_ID; none is set"):
        coordinator()
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "localhost:1234")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(DeepSegError, match="expected host:port and two whole numbers"):
        coordinator()
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "1")
    assert coordinator() == ("localhost:1234", 2, 1)


def test_slurm_node_lists_and_task_counts_are_read_without_tensorflow():
    from deepseg_core.training.cluster import first_host, tasks_per_node

    assert first_host("gpu[03-05,9],cpu1") == "gpu03"
    assert first_host("node7,node8") == "node7" and first_host("localhost") == "localhost"
    assert tasks_per_node("3(x2),1") == [3, 3, 1] and tasks_per_node("4") == [4]

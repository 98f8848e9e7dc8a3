"""Multi-worker training on one machine: two CPU workers through TF_CONFIG on loopback ports.

Tolerance of the single- vs two-worker comparison: the two runs see the same tiles with the
same augmentation in every step; what differs is the order of the float32 sums (two half-
batch means all-reduced instead of one mean over the batch). Those rounding differences are
~1e-7 of a value per step; over the few steps here they stay below 1e-6 in the weights and
1e-5 relative in the logged metrics (measured: 3e-8 and 1.3e-6), far below what one step of
training changes (~1e-3). The model has no batch normalization (per-replica statistics would
differ by design) and the loss is cross-entropy (a per-batch Dice is not a mean of halves).
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.errors import DeepSegError
from deepseg_core.plugins import load_plugins
from deepseg_core.store.identity import store_path
from tests.support.cli import command, environment
from tests.support.synthetic import squares_scene, write_experiment
from tests.support.workers import (
    WORKER,
    experiment,
    finish,
    kill_second_after_an_epoch,
    resumes_to_the_uninterrupted_run,
    rows,
    spawn,
    weights,
)

ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def start_workers(path: Path, folder: Path, workers: int = 2) -> list[subprocess.Popen]:
    """One training process per worker; worker i saves its weights to w-i.npz."""
    ports = free_ports(workers)
    return [spawn(path, folder / f"w-{i}.npz", **ONE_THREAD, TF_CONFIG=tf_config(ports, i))
            for i in range(workers)]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dist")
    img, gpkg, _ = squares_scene(folder, size=160, nsquares=20)
    return folder, img, gpkg


def test_two_workers_equal_one_worker_with_the_same_global_batch(scene, tmp_path):
    single_path, single = experiment(scene, "single", batch_size=8)
    done = subprocess.run([*WORKER, str(single_path), str(tmp_path / "w-single.npz")],
                          env=environment(**ONE_THREAD),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # each worker's batches made by its own loader process (training.workers: 1)
    two_path, two = experiment(scene, "two", batch_size=4, distribute="multiworker", workers=1)
    results = finish(start_workers(two_path, tmp_path))
    assert [rc for rc, _ in results] == [0, 0], "\n".join(t[-3000:] for _, t in results)
    assert "global batch 8 = batch_size 4 x 2 replica(s)" in results[1][1]
    assert "worker 1 of 2" in results[1][1]
    assert "1 loader process(es) make the batches ahead" in results[1][1]

    log = rows(two)
    losses = [float(r["loss"]) for r in log]
    assert len(log) == 3 and losses[-1] < losses[0]
    # both workers end with the same weights; the run equals the single-worker run
    w0, w1 = weights(tmp_path / "w-0.npz"), weights(tmp_path / "w-1.npz")
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))
    ws = weights(tmp_path / "w-single.npz")
    assert all(np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(w0, ws))
    for mine, theirs in zip(log, rows(single)):  # validation metrics are global
        for key in ("loss", "miou", "val_loss", "val_miou", "val_accuracy"):
            assert float(mine[key]) == pytest.approx(float(theirs[key]), rel=1e-5), key
    # only the chief's files exist, and the other worker left nothing in its scratch folder
    files = sorted(str(p.relative_to(two.outdir)) for p in two.outdir.rglob("*")
                   if p.is_file() and "tensorboard" not in p.parts)
    assert files == ["experiment.yaml", "logs/curves.png", "logs/training.csv",
                     "model/best.keras", "model/last.keras", "model/model.json",
                     "model/state.json"]
    assert len(list((two.outdir / "logs" / "tensorboard").rglob("events.*"))) == 2
    assert not list((tmp_path / "tmp-w-1").iterdir())


def test_crossval_on_two_workers_equals_one_process(scene, tmp_path, registry):
    """Every worker trains each fold; the chief alone evaluates it and writes the reports."""
    from deepseg_core.models.folder import load_model

    two_path, two = experiment(scene, "cv-two", batch_size=4, distribute="multiworker")
    ports = free_ports(2)
    procs = [subprocess.Popen(command("crossval", two_path), text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=environment(
                                  True, **ONE_THREAD, TF_CONFIG=tf_config(ports, i)))
             for i in range(2)]
    results = finish(procs)
    assert [rc for rc, _ in results] == [0, 0], "\n".join(t[-3000:] for _, t in results)
    assert "crossval over 2 fold(s)" in results[0][1]
    assert "worker 1 of 2" in results[1][1] and "crossval over" not in results[1][1]
    single_path, single = experiment(scene, "cv-single", batch_size=8)
    done = subprocess.run(command("crossval", single_path), capture_output=True, text=True,
                          env=environment(True, **ONE_THREAD), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for fold in (0, 1):
        folder = f"crossval/fold{fold}"
        records = [json.loads((e.outdir / folder / "metrics.json").read_text())
                   for e in (two, single)]
        assert records[0] == records[1], fold  # the same counts over the held-out tiles
        mine, theirs = (load_model(registry, "tinyfcn", e.outdir / folder / "model" /
                                   "last.keras")[1].get_weights() for e in (two, single))
        assert all(np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(mine, theirs))


def test_each_worker_reads_its_own_share_with_its_own_augmentation(scene):
    from deepseg_core.training.dataset import Feed, StoreDataset

    _, exp = experiment(scene, "share", batch_size=4)
    registry = load_plugins().registry
    feed = Feed(registry.get("model", "unet64"), 8, seed=9,
                augmenters=(registry.get("augmenter", "flips")(),))
    kw = dict(path=store_path(exp), indices=np.arange(3, 21), feed=feed, shuffle=True)
    data = StoreDataset(**kw)
    for epoch in (0, 1):
        parts = [np.concatenate([data.tiles(epoch, s, w, 2) for s in range(data.steps)])
                 for w in (0, 1)]
        assert len(parts[0]) == len(parts[1]) == data.steps * 4  # equal steps for all
        assert set(parts[0]) | set(parts[1]) == set(range(3, 21))  # none missed
        whole = np.concatenate([data.tiles(epoch, s) for s in range(data.steps)])
        assert np.array_equal(np.sort(np.concatenate(parts)), np.sort(whole))
        assert len(set(parts[0])) < 18 and len(set(parts[1])) < 18  # none reads all
    # reproducible, and the same tile gets the same augmentation whoever reads it
    x0, _ = data.batch(1, 0, 0, 2)
    again, _ = StoreDataset(**kw).batch(1, 0, 0, 2)
    assert np.array_equal(x0, again)
    x1, _ = data.batch(1, 0, 1, 2)
    whole, _ = data.batch(1, 0)
    assert not np.array_equal(x0, x1)
    assert sorted(map(bytes, np.concatenate([x0, x1]))) == sorted(map(bytes, whole))


def test_multiworker_without_a_cluster_is_one_line(scene, monkeypatch):
    from deepseg_core.training.distributed import multiworker_cluster

    for var in ("TF_CONFIG", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(DeepSegError, match="multiworker needs a cluster: start one task per "
                                           "worker with srun .* or set TF_CONFIG"):
        multiworker_cluster()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(DeepSegError, match="TF_CONFIG: expected JSON with cluster.worker"):
        multiworker_cluster()


def test_old_boolean_distribute_is_mirrored_or_none(scene):
    folder, img, gpkg = scene
    for value, kind in ((True, "mirrored"), (False, "none"), ("multiworker", "multiworker")):
        path = write_experiment(folder, img, gpkg, name="flag", training={"distribute": value})
        assert load_experiment(path).training.distribute == kind
    path = write_experiment(folder, img, gpkg, name="flag", training={"distribute": "ring"})
    with pytest.raises(DeepSegError, match="distribute"):
        load_experiment(path)


@pytest.mark.faults
def test_a_killed_worker_and_a_rerun_resume_both_to_the_uninterrupted_run(scene, tmp_path):
    whole_path, whole = experiment(scene, "whole", batch_size=4, distribute="multiworker",
                                   reduce_lr=1)
    assert [rc for rc, _ in finish(start_workers(whole_path, tmp_path / "whole"))] == [0, 0]
    # through loader processes (training.workers): the same bits as the run without them
    path, exp = experiment(scene, "killed", batch_size=4, distribute="multiworker",
                           reduce_lr=1, workers=1)
    procs = start_workers(path, tmp_path)
    kill_second_after_an_epoch(exp, procs)
    try:  # the chief notices its lost peer and stops with one line
        _, err = procs[0].communicate(timeout=120)
        assert procs[0].returncode != 0
        assert "lost the cluster" in err.strip().splitlines()[-1], err[-2000:]
    except subprocess.TimeoutExpired:
        procs[0].kill()
    resumes_to_the_uninterrupted_run(procs, path, exp, whole, tmp_path, start_workers)

"""``deepseg sbatch --submit`` of a two-node experiment on a real two-node Slurm.

The cluster (tests/support/slurm.py, ``nodes=2``): slurmctld on the machine and one
``slurmd -N nodeK`` per node, each in a network namespace of its own (tests/support/netns.py),
tasks bound to their CPUs by task/affinity, no cgroups. Needs root on Debian; elsewhere the
test skips and says why. No Slurm command is mocked.

The two-node run trains with one worker per node at batch_size 4 (global batch 8), crossval
runs on the same two workers, prediction is an array of two shards; then crossval runs again
as an array (``hpc.crossval_array``: each fold a two-node job, then the report). All of it is
held against one process at batch_size 8 with the tolerance of
tests/training/test_distributed.py: weights within 1e-6 (only the order of float32 sums
differs), the class maps and crossval counts equal. Like that test it trains the test
plugin tinyfcn (two convolutions), not unet64: unet64's batch normalization takes its
statistics over each worker's half of the batch, so its weights differ from one process's by
design (measured: 0.024 after two steps).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from deepseg_core.config import load_experiment
from deepseg_core.models.folder import load_model
from deepseg_core.stages import predict
from tests.support.cli import deepseg
from tests.support.hpc import HPC, band, tiny_experiment

pytestmark = [pytest.mark.interop, pytest.mark.slurm, pytest.mark.xdist_group("slurm")]

ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "OMP_NUM_THREADS": "1"}
STAGES = "dataprep,train,crossval,predict"


def experiment(folder, hpc: dict | None = None, **training):
    """Two epochs of tinyfcn (32 px tiles, 2 folds) with cross-entropy."""
    return tiny_experiment(folder, epochs=2, model="tinyfcn",
                           training={"seed": 1, "loss": "ce", **training},
                           hpc={**HPC, "shards": 2, **(hpc or {})})


def job_logs(exp) -> str:
    folder = exp.outdir / "slurm-logs"
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(folder.glob("*")))


def weights(registry, exp, path: str) -> list[np.ndarray]:
    model = load_model(registry, exp.model.name, exp.outdir / path)[1]
    return [np.asarray(w) for w in model.get_weights()]


def counts(exp, fold: int) -> np.ndarray:
    record = json.loads((exp.outdir / "crossval" / f"fold{fold}" / "metrics.json").read_text())
    return np.asarray(record["states"]["pycm"]["counts"])


def submit(cluster, path, stages: str, env: dict) -> tuple[dict[str, str], dict]:
    """``deepseg sbatch --submit`` to its end: (job -> id, job id -> task states), all
    COMPLETED. The jobs find tinyfcn through its entry point, as they would any plugin."""
    result = deepseg("sbatch", path, "--stages", stages, "--submit", env=env, test_models=True)
    assert result.returncode == 0, result.stderr
    ids = dict(re.findall(r"submitted (\S+)\.sh as job (\d+)", result.stdout))
    exp = load_experiment(path)
    try:
        states = cluster.wait(list(ids.values()), timeout=900)
    except TimeoutError as exc:
        pytest.fail(f"{exc}\n{job_logs(exp)}")
    assert all(set(s) == {"COMPLETED"} for s in states.values()), f"{states}\n{job_logs(exp)}"
    return ids, states


def test_two_nodes_train_crossval_and_predict_as_one_node_does(two_nodes, tmp_path,
                                                               registry):
    env = {**os.environ, **ONE_THREAD}
    path = experiment(tmp_path / "two", {"train_nodes": 2, "train_tasks_per_node": 1},
                      batch_size=4, distribute="multiworker")
    ids, states = submit(two_nodes, path, STAGES, env)
    assert list(ids) == ["dataprep", "train", "predict", "merge"]
    exp = load_experiment(path)
    assert len(states[ids["predict"]]) == 2  # one array task per shard
    shown = subprocess.run(["scontrol", "-o", "show", "job", ids["train"]],
                           capture_output=True, text=True).stdout
    assert "NodeList=node[1-2]" in shown and "NumNodes=2" in shown, shown
    log = (exp.outdir / "slurm-logs" / f"{exp.name}-train-{ids['train']}.out").read_text()
    for worker in ("worker 0 of 2", "worker 1 of 2"):  # train, then crossval's fold 0
        assert log.count(worker) == 2, log[-3000:]
    assert log.count("global batch 8 = batch_size 4 x 2 replica(s)") == 4, log[-3000:]
    assert "fold 1: the train stage's run" in log  # taken, as by one process

    # one process, the same global batch, no Slurm
    one_path = experiment(tmp_path / "one", batch_size=8)
    done = deepseg("run", one_path, "--stages", STAGES, env=env, merged=True,
                   test_models=True)
    assert done.returncode == 0, done.stdout[-3000:]
    one = load_experiment(one_path)
    for run in ("model/last.keras", "crossval/fold0/model/last.keras",
                "crossval/fold1/model/last.keras"):
        mine, theirs = weights(registry, exp, run), weights(registry, one, run)
        worst = max(float(np.abs(a - b).max()) for a, b in zip(mine, theirs))
        assert worst <= 1e-6, (run, worst)
    for fold in (0, 1):
        assert np.array_equal(counts(exp, fold), counts(one, fold)), fold
    assert np.array_equal(band(predict.output_path(exp)), band(predict.output_path(one)))

    # crossval as an array instead: each fold a two-node job of its own, then the report
    settings = yaml.safe_load(path.read_text())
    settings["hpc"]["crossval_array"] = True
    path.write_text(yaml.safe_dump(settings))
    shutil.rmtree(exp.outdir / "crossval")
    ids, states = submit(two_nodes, path, "crossval", env)
    assert list(ids) == ["crossval", "crossval-report"] and len(states[ids["crossval"]]) == 2
    log = (exp.outdir / "slurm-logs" / f"{exp.name}-crossval-{ids['crossval']}_0.out")
    assert "worker 1 of 2" in log.read_text()  # fold 0 trained on both nodes
    for fold in (0, 1):
        assert np.array_equal(counts(exp, fold), counts(one, fold)), fold

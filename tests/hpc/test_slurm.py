"""``deepseg sbatch --submit`` on a real single-node Slurm: train, prediction array, merge.

Needs root on Debian: the session fixture (conftest.py) installs the Slurm packages if they
are missing (apt-get), starts munged, slurmctld and slurmd, and stops them at the end.
Elsewhere the tests skip and say why. No Slurm command is mocked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import predict
from tests.support.cli import deepseg, environment
from tests.support.hpc import HPC, band, tiny_experiment
from tests.support.models import save_untrained
from tests.support.synthetic import squares_scene

# under pytest-xdist, one worker runs this module: its fixtures are made once
pytestmark = [pytest.mark.interop, pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


def job_logs(exp) -> str:
    folder = exp.outdir / "slurm-logs"
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(folder.glob("*")))


def assert_completed(cluster, exp, ids: list[str], timeout: float) -> dict[str, list[str]]:
    try:
        states = cluster.wait(ids, timeout)
    except TimeoutError as exc:
        pytest.fail(f"{exc}\n{job_logs(exp)}")
    assert all(set(s) == {"COMPLETED"} for s in states.values()), f"{states}\n{job_logs(exp)}"
    return states


def test_sbatch_trains_predicts_in_an_array_and_merges(slurm, tmp_path):
    path = tiny_experiment(tmp_path, training={"batch_size": 8, "seed": 1, "distribute": True})
    result = deepseg("sbatch", str(path), "--stages", "dataprep,train,predict", "--shards", "3",
                     "--submit")
    assert result.returncode == 0, result.stderr
    ids = dict(re.findall(r"submitted (\S+)\.sh as job (\d+)", result.stdout))
    assert list(ids) == ["dataprep", "train", "predict", "merge"], result.stdout
    exp = load_experiment(path)
    states = assert_completed(slurm, exp, list(ids.values()), timeout=600)
    assert len(states[ids["predict"]]) == 3  # one task per shard
    logs = exp.outdir / "slurm-logs"
    assert (logs / f"{exp.name}-predict-{ids['predict']}_2.out").exists()
    out = predict.output_path(exp)
    merged = band(out)
    assert not list(out.parent.glob("*.part-*"))

    # the same model in one process, no shards: the same raster, bit for bit
    registry = load_plugins().registry
    out.unlink()
    predict.run(exp, registry)
    assert np.array_equal(band(out), merged)


@pytest.mark.faults
def test_a_requeued_prediction_task_resumes_and_the_merge_equals_one_run(slurm, tmp_path,
                                                                          registry):
    """Preemption as Slurm does it: ``scontrol requeue`` of a running array task mid-shard.

    The jobs predict with a NumPy test model (found through its entry point, as the jobs get
    this environment): no TensorFlow to start in each task. Slurm holds a requeued job for
    about two minutes before it may start again; the test lifts that hold as an administrator
    would (``scontrol update StartTime=now``) instead of waiting it out."""
    big, _, _ = squares_scene(tmp_path / "big", size=1000, nsquares=90, seed=5)
    path = tiny_experiment(tmp_path, model="numpyfcn",
                           predict={"images": [{"path": str(big)}], "commit_seconds": 0})
    exp = load_experiment(path)
    save_untrained(exp, registry)
    out = predict.output_path(exp)
    predict.run(exp, registry)
    single = band(out)
    out.unlink()
    result = deepseg("sbatch", str(path), "--stages", "predict", "--shards", "3",
                     test_models=True)
    assert result.returncode == 0, result.stderr
    folder = exp.outdir / "slurm"
    array = sbatch(folder / "predict.sh", env=environment(test_models=True))
    record = out.with_name(f"{out.name}.part-0001-of-0003.commit.json")
    deadline = time.monotonic() + 300
    while not (record.exists() and 100 <= json.loads(record.read_text())["tiles"]
               and not json.loads(record.read_text())["complete"]):
        assert time.monotonic() < deadline, job_logs(exp)
        time.sleep(0.02)
    requeued = subprocess.run(["scontrol", "requeue", f"{array}_1"], capture_output=True,
                              text=True)
    assert requeued.returncode == 0, requeued.stderr
    committed = json.loads(record.read_text())["tiles"]
    release_requeue_hold(slurm, f"{array}_1")
    assert_completed(slurm, exp, [array], timeout=300)
    shown = subprocess.run(["scontrol", "-o", "show", "job", f"{array}_1"],
                           capture_output=True, text=True).stdout
    assert "Restarts=1" in shown, shown
    merge = sbatch(folder / "merge.sh", env=environment(test_models=True))
    assert_completed(slurm, exp, [merge], timeout=300)
    assert np.array_equal(band(out), single)
    assert committed >= 100 and not list(out.parent.glob("*.part-*"))


def sbatch(*args, env: dict | None = None) -> str:
    """What a user types to resubmit by hand."""
    done = subprocess.run(["sbatch", "--parsable", *map(str, args)], capture_output=True,
                          text=True, check=True, env=env)
    return done.stdout.strip().split(";")[0]


def release_requeue_hold(cluster, job: str, timeout: float = 60) -> None:
    """Let a requeued job start now (Slurm holds it pending with Reason=BeginTime)."""
    deadline = time.monotonic() + timeout
    while cluster.job_states(job) != ["PENDING"]:  # first it completes its old run
        assert time.monotonic() < deadline, cluster.job_states(job)
        time.sleep(0.1)
    # slurmd refuses a run whose credential dates from the second in which the last run's
    # was revoked ('Job credential revoked': the job fails): release it two seconds later
    time.sleep(2)
    done = subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def worker_pids(rank: str) -> list[int]:
    """Processes of 'deepseg train' that Slurm started as task ``rank`` of a step."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"train" in cmd and any(c.endswith(b"deepseg") for c in cmd[:2]) and \
                f"SLURM_PROCID={rank}".encode() in env:
            pids.append(int(proc.name))
    return pids


@pytest.mark.faults
def test_srun_trains_two_workers_and_resumes_after_one_is_killed(slurm, tmp_path):
    path = tiny_experiment(tmp_path, epochs=6, training={
        "batch_size": 4, "seed": 1, "distribute": "multiworker"},
        hpc={**HPC, "train_tasks_per_node": 2, "mem": "2G"})
    result = deepseg("sbatch", str(path), "--stages", "dataprep,train", "--submit")
    assert result.returncode == 0, result.stderr
    [job] = re.findall(r"submitted train\.sh as job (\d+)", result.stdout)
    exp = load_experiment(path)
    state = exp.outdir / "model" / "state.json"
    deadline = time.monotonic() + 400
    while not (state.exists() and json.loads(state.read_text())["epoch"] >= 2):
        assert time.monotonic() < deadline and slurm.job_states(job) != ["FAILED"], \
            job_logs(exp)
        time.sleep(0.5)
    time.sleep(0.7)  # into the next epoch
    pids = worker_pids("1")
    assert pids, job_logs(exp)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # worker 1 dies mid-epoch; srun ends the step
    states = slurm.wait([job], timeout=300)
    assert states[job] != ["COMPLETED"], job_logs(exp)
    done = json.loads(state.read_text())["epoch"]
    assert 2 <= done < 6
    log = (exp.outdir / "slurm-logs" / f"{exp.name}-train-{job}.out").read_text()
    assert "worker 0 of 2" in log and "worker 1 of 2" in log
    assert "global batch 8 = batch_size 4 x 2 replica(s)" in log

    # the job again, resuming: every worker continues from the last committed epoch
    text = path.read_text().replace("distribute: multiworker", "distribute: multiworker\n"
                                    "  resume: true")
    path.write_text(text)
    again = sbatch(exp.outdir / "slurm" / "train.sh")
    assert_completed(slurm, exp, [again], timeout=600)
    rows = (exp.outdir / "logs" / "training.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(6))
    record = json.loads(state.read_text())
    assert record["epoch"] == 6
    assert record["iterations"] % 6 == 0  # the same number of steps in every epoch
    assert not list((exp.outdir / "model").glob("*.pending.keras"))

"""Jobs that requeue themselves at their time limit (hpc.signal_seconds), on the real Slurm of
conftest.py: ``--signal=B:USR1@N`` reaches train.sh, which requeues its job; the next run
continues from the last committed epoch.

The training is slow per epoch only by its experiment (many one-tile steps, each slowed by
a test augmenter), so that a one-minute job, signalled about half a minute in, is requeued
before it trains all epochs. Slurm holds
a requeued job for about two minutes before it may start again; the test lifts that hold as
an administrator would (``scontrol update StartTime=now``) instead of waiting it out. Each
run starts Python and TensorFlow again: on a busy machine that takes most of its half minute,
and the test takes longer (seen: 5 minutes with 8 requeues, 11 minutes with 21 at a load
average of 12 on 2 cores).
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from tests.hpc.test_slurm import job_logs, sbatch
from tests.support.cli import command, deepseg, environment
from tests.support.hpc import HPC, tiny_experiment
from tests.support.scenarios import model_weights

pytestmark = [pytest.mark.interop, pytest.mark.slurm, pytest.mark.faults,
              pytest.mark.xdist_group("slurm")]

#: 12 epochs of 18 one-tile steps, each step over 0.3 s however idle the machine (the test
#: augmenter 'slow' sleeps): over 65 s of training. Slurm signals a one-minute job 20 to 50 s
#: after it starts, and a requeued run some 27 s after: two runs cannot finish it.
EXPERIMENT = {"size": 384, "epochs": 12, "augmentation": ["flips", {"name": "slow",
              "seconds": 0.3}], "training": {"batch_size": 1, "seed": 1, "resume": "auto"}}
FAILED = {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}


def job(cluster, job_id: str) -> dict[str, str]:
    """The job's fields in ``scontrol show job`` (JobState, Reason, Restarts, ...)."""
    done = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True,
                          text=True)
    return dict(f.split("=", 1) for f in done.stdout.split() if "=" in f)


def follow_requeues(cluster, exp, job_id: str, timeout: float) -> dict[str, str]:
    """Wait for the job to complete, starting each requeued run as soon as Slurm may."""
    deadline, released = time.monotonic() + timeout, set()
    while (fields := job(cluster, job_id)).get("JobState") != "COMPLETED":
        state, restarts = fields.get("JobState"), fields.get("Restarts")
        assert state not in FAILED and time.monotonic() < deadline, f"{fields}\n{job_logs(exp)}"
        if state == "PENDING" and fields.get("Reason") == "BeginTime" and \
                restarts not in released:
            time.sleep(2)  # not in the second its last run ended (test_slurm.py says why)
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"],
                           check=True, capture_output=True)
            released.add(restarts)
        time.sleep(0.5)
    return fields


def test_a_training_requeued_at_its_time_limit_ends_as_one_uninterrupted_run(slurm, tmp_path):
    path = tiny_experiment(tmp_path / "slurm", hpc={**HPC, "train_time": "1",
                                                    "signal_seconds": 10}, **EXPERIMENT)
    one = tiny_experiment(tmp_path / "one", **EXPERIMENT)  # the same data and settings
    assert deepseg("dataprep", str(one), test_models=True).returncode == 0
    with open(tmp_path / "one.log", "w") as out:  # meanwhile, the uninterrupted run
        reference = subprocess.Popen(command("train", one), env=environment(True), stdout=out,
                                     stderr=subprocess.STDOUT)
    result = deepseg("sbatch", str(path), "--stages", "dataprep,train", "--submit",
                     test_models=True)  # its jobs get this environment: the test plugins
    assert result.returncode == 0, result.stderr
    exp = load_experiment(path)
    text = (exp.outdir / "slurm" / "train.sh").read_text()
    assert "#SBATCH --signal=B:USR1@10\n" in text and "#SBATCH --requeue\n" in text
    train = result.stdout.split("submitted train.sh as job ")[1].split()[0]
    waiting = sbatch("--dependency=afterok:" + train, "--kill-on-invalid-dep=yes",
                     f"--output={tmp_path}/after.out", "--wrap", "echo after")

    fields = follow_requeues(slurm, exp, train, timeout=1200)  # 5 min, 11 at load 12
    assert int(fields["Restarts"]) >= 2, f"{fields}\n{job_logs(exp)}"  # three runs or more
    log = (exp.outdir / "slurm-logs" / f"{exp.name}-train-{train}.out").read_text()
    assert log.count(f"deepseg: job {train}: time limit near") == int(fields["Restarts"])
    assert log.count(f"deepseg: job {train} on ") == int(fields["Restarts"]) + 1
    assert reference.wait(timeout=600) == 0, (tmp_path / "one.log").read_text()[-3000:]
    # the job waiting for the training (afterok) was neither started early nor cancelled
    slurm.wait([waiting], timeout=120)
    assert slurm.job_states(waiting) == ["COMPLETED"]
    assert (tmp_path / "after.out").read_text() == "after\n"

    done, alone = exp.outdir, load_experiment(one).outdir
    for name in ("last.keras", "best.keras"):
        a, b = model_weights(done / "model" / name), model_weights(alone / "model" / name)
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)), name
    csv = (done / "logs" / "training.csv").read_text()
    assert csv == (alone / "logs" / "training.csv").read_text()
    assert len(csv.splitlines()) == 1 + 12
    assert not list((done / "model").glob("*.pending.keras"))

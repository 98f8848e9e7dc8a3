"""``deepseg shards`` on what its job was given: the cores of its affinity and Slurm share
(SLURM_CPUS_PER_TASK), the GPUs of CUDA_VISIBLE_DEVICES; not the node's (os.cpu_count)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.stages import predict
from tests.support.cli import command, environment
from tests.support.hpc import band, tiny_experiment
from tests.support.models import save_untrained

NODE = len(os.sched_getaffinity(0))


def cores(*prefix: str, **env: str) -> int:
    """allotted_cores() in a child started by ``prefix`` (taskset), with ``env`` set."""
    base = {k: v for k, v in environment().items() if not k.startswith("SLURM_")}
    code = "from deepseg_core.hpc.cores import allotted_cores; print(allotted_cores())"
    done = subprocess.run([*prefix, sys.executable, "-c", code], env={**base, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_the_cores_are_the_affinity_at_most_slurms_share():
    assert cores() == NODE
    assert cores(SLURM_CPUS_PER_TASK="1") == 1
    assert cores(SLURM_CPUS_PER_TASK=str(NODE + 8)) == NODE  # never more than it may run on
    for junk in ("", "0", "two"):
        assert cores(SLURM_CPUS_PER_TASK=junk) == NODE


@pytest.mark.skipif(shutil.which("taskset") is None or NODE < 2,
                    reason="needs taskset and two cores")
def test_a_process_bound_to_one_core_counts_one():
    assert cores("taskset", "-c", "0") == 1
    assert cores("taskset", "-c", "0", SLURM_CPUS_PER_TASK="4") == 1


def test_shards_share_out_the_jobs_cores_and_gpus(tmp_path, registry):
    exp = load_experiment(tiny_experiment(tmp_path, model="numpyfcn"))
    save_untrained(exp, registry)
    single = band(predict.run(exp, registry))
    predict.output_path(exp).unlink()
    result = shards(exp, SLURM_CPUS_PER_TASK="1", CUDA_VISIBLE_DEVICES="4,6,7")
    # one worker per GPU given (the NumPy model uses none), one thread each of the one core
    assert ("deepseg shards: 3 worker(s) at once, each 1 thread(s) of the 1 CPU core(s) "
            "given; GPUs: 4,6,7") in result, result
    assert np.array_equal(band(predict.output_path(exp)), single)
    result = shards(exp, SLURM_CPUS_PER_TASK="1", CUDA_VISIBLE_DEVICES="")
    assert ("deepseg shards: 2 worker(s) at once, each 1 thread(s) of the 1 CPU core(s) "
            "given; GPUs: none") in result, result


def shards(exp, **job: str) -> str:
    """``deepseg shards EXP --shards 3`` in a job given ``job`` (its output)."""
    done = subprocess.run(command("shards", exp.source, "--shards", "3"), text=True,
                          env=environment(True, **job), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr

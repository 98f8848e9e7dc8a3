"""``deepseg shards`` on what its job was given: the cores of its affinity and Slurm share
(SLURM_CPUS_PER_TASK, counted by io.threads.available_cpus: tests/io/test_threads.py), the
GPUs of CUDA_VISIBLE_DEVICES; not the node's (os.cpu_count)."""

from __future__ import annotations

import subprocess

import numpy as np

from deepseg_core.config import load_experiment
from deepseg_core.stages import predict
from tests.support.cli import command, environment
from tests.support.hpc import band, tiny_experiment
from tests.support.models import save_untrained


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

"""deepseg_core.io.threads: the CPUs given (affinity, Slurm), and an ordered bounded map."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import pytest

from deepseg_core.io.threads import map_in_order
from tests.support.cli import environment

CPUS = [sys.executable, "-c", "from deepseg_core.io.threads import available_cpus as a; "
        "print(a())"]


def cpus(*prefix: str, **env: str) -> int:
    """available_cpus() in a child started under ``prefix`` with ``env``."""
    base = {k: v for k, v in environment().items() if k != "SLURM_CPUS_PER_TASK"}
    done = subprocess.run([*prefix, *CPUS], env={**base, **env}, capture_output=True,
                          text=True, check=True)
    return int(done.stdout)


def test_the_cpus_given_are_the_affinity_and_at_most_slurms():
    everything = cpus()
    assert everything >= 1
    assert cpus(SLURM_CPUS_PER_TASK="1") == 1
    assert cpus(SLURM_CPUS_PER_TASK=str(everything + 8)) == everything  # never more than given
    assert cpus(SLURM_CPUS_PER_TASK="two") == everything  # not a number: ignored
    if shutil.which("taskset"):
        assert cpus("taskset", "-c", "0") == 1


@pytest.mark.parametrize("threads", [1, 3])
def test_results_come_in_order_with_few_items_in_flight(threads):
    lock, running, most = threading.Lock(), [0], [0]
    started = []

    def work(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002 * (i % 3))  # later items often finish first
        with lock:
            running[0] -= 1
        return i * i

    def items():
        for i in range(40):
            started.append(i)
            yield i

    results = map_in_order(work, items(), threads)
    got = [next(results) for _ in range(5)]
    assert got == [0, 1, 4, 9, 16]
    assert len(started) <= 5 + 2 * threads  # items are taken as they are needed
    assert list(results) == [i * i for i in range(5, 40)]
    assert most[0] <= threads


def test_an_error_is_raised_in_its_place_and_the_rest_is_cancelled():
    done = []

    def work(i):
        if i == 4:
            raise ValueError("item 4")
        done.append(i)
        return i

    results = map_in_order(work, range(1000), 2)
    assert [next(results) for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="item 4"):
        next(results)
    assert len(done) < 20  # the pool stopped: no thread went on through the items


def test_closing_early_waits_for_the_threads():
    def work(i):
        time.sleep(0.01)
        return i

    results = map_in_order(work, range(100), 2, name="deepseg-test")
    assert next(results) == 0
    results.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("deepseg-test")]

"""training.loaders: batches made ahead by forked processes, in order, bounded; the processes
end with close() and die with a SIGKILLed training process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deepseg_core.training.loaders import Loader
from tests.support.cli import environment


class Batches:
    """A dataset stand-in: a batch says its key and the process that made it."""

    def batch(self, epoch, step, part, parts):
        time.sleep(0.001 * ((step * 7) % 3))  # later batches often finish first
        return (epoch, step, part, parts), os.getpid()


def keys(n):
    return [(e, s, p, 2) for e in range(2) for s in range(n) for p in range(2)]


def test_processes_make_the_batches_in_order():
    loader = Loader(Batches(), 2)
    try:
        got = list(loader.batches(keys(10)))
    finally:
        loader.close()
    assert [key for key, _ in got] == keys(10)
    makers = {pid for _, pid in got}
    assert os.getpid() not in makers and len(makers) == 2


def test_without_workers_the_batches_are_made_here():
    got = list(Loader(Batches(), 0).batches(keys(3)))
    assert [key for key, _ in got] == keys(3) and {pid for _, pid in got} == {os.getpid()}


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from tests.training.test_loaders import Batches
from deepseg_core.training.loaders import Loader
loader = Loader(Batches(), 2)
print(*loader._pool._processes, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_the_processes_die_with_a_sigkilled_parent():
    root = str(Path(__file__).resolve().parents[2])
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=root)],
                             env=environment(), stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in child.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in pids if alive(p)]
    finally:
        child.kill()
        child.wait()

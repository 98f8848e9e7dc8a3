"""The one kill loop: ``deepseg`` SIGKILLed at chosen points, each rerun resuming, then finished.

A point is an I/O boundary (:class:`At`: the Nth ``os.fsync``/``os.replace`` of the run, or
its Nth write into an HDF5 dataset, counted by the child itself: :mod:`tests.support.child`),
a moment (:class:`Moment`: seconds after the run's work began, the kill sent from here) or a
state of its files (:class:`When`: as soon as a test's check of them holds, seen from here).
Either way the process dies by a real SIGKILL with its files as they are; the next run starts
from what it left.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import cli


@dataclass(frozen=True)
class At:
    """Just before (``after``: just after) the run's ``n``-th I/O boundary that is ``call``
    ('fsync' or 'replace'; '': either; 'h5write': a write into an HDF5 dataset) on a path
    ending in ``name`` ('': any)."""

    n: int
    call: str = ""
    name: str = ""
    after: bool = False

    def spec(self) -> str:
        """The child's ``--kill`` option."""
        return f"{'after' if self.after else 'before'}:{self.n}:{self.call}:{self.name}"


@dataclass(frozen=True)
class Moment:
    """``seconds`` after the run's work began (``began()`` held), or after its start."""

    seconds: float


@dataclass(frozen=True)
class When:
    """As soon as ``holds()`` is true (polled from here every few milliseconds): a state of
    the run's files, such as its commit record passing a tile count."""

    holds: Callable[[], bool]


@dataclass
class Outcome:
    """What a series of runs did: kills, runs, the finishing run's output, the probes."""

    kills: int = 0
    runs: int = 0
    output: str = ""
    states: list = field(default_factory=list)


def trace(*args, folder: Path, **launch) -> list[tuple[str, str]]:
    """Run ``deepseg ARGS`` to the end, tracing its I/O boundaries: ``[(call, path), ...]``."""
    path = Path(folder) / "boundaries.jsonl"
    done = cli.deepseg(*args, trace=path, merged=True, **launch)
    assert done.returncode == 0, done.stdout[-3000:]
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()]


def kill_then_finish(args, points, *, test_models=False, began=None, prepare=None, probe=None,
                     timeout: float = 600) -> Outcome:
    """Run ``deepseg ARGS`` once per point, SIGKILLed there (each run resumes what the last
    one left), then once more to its end, which must succeed. A run that ends before its
    point is the finishing run. ``prepare()`` runs before each run, ``probe()`` after each
    kill (its results are in ``states``); ``began()`` says that a run's work began (moments
    count from then: kills in the interpreter's start would test Python, not DeepSeg)."""
    outcome = Outcome()
    for point in [*points, None]:
        if prepare is not None:
            prepare()
        proc = cli.start(*args, test_models=test_models,
                         kill=point.spec() if isinstance(point, At) else None)
        outcome.runs += 1
        if isinstance(point, Moment):
            _kill_at_moment(proc, point.seconds, began, timeout)
        elif isinstance(point, When):
            _kill_when(proc, point.holds, timeout)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        if proc.returncode == -signal.SIGKILL:
            outcome.kills += 1
            if probe is not None:
                outcome.states.append(probe())
            continue
        assert proc.returncode == 0, f"{args}: exit {proc.returncode} ({point}):\n{out[-3000:]}"
        outcome.output = out
        return outcome
    raise AssertionError("unreachable: the last run has no kill point")


def _kill_at_moment(proc: subprocess.Popen, seconds: float, began, timeout: float) -> None:
    end = time.monotonic() + timeout
    while began is not None and not began():
        if proc.poll() is not None:
            return
        assert time.monotonic() < end, "the run's work never began"
        time.sleep(0.002)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)


def _kill_when(proc: subprocess.Popen, holds: Callable[[], bool], timeout: float) -> None:
    if wait_for(holds, proc, timeout):
        proc.send_signal(signal.SIGKILL)


def wait_for(holds: Callable[[], bool], proc: subprocess.Popen, timeout: float = 300) -> bool:
    """Poll until ``holds()`` (True) or until ``proc`` ended first (False)."""
    end = time.monotonic() + timeout
    while not holds():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < end, "the process neither reached the state nor ended"
        time.sleep(0.002)
    return True

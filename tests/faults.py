"""Faults from outside the process: the CLI in a subprocess, SIGKILLed at random moments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CLI = Path(__file__).resolve().parent / "deepseg_test_cli.py"


def start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    """``deepseg ARGS`` (with the test plugins) in a new process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, str(CLI), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``deepseg ARGS`` to the end; the output is stdout and stderr together."""
    proc = start(*args, cwd=cwd)
    out, _ = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 300) -> bool:
    """Poll until ``predicate()`` holds (True) or the process ended (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise TimeoutError("the process neither started its work nor ended")


def snapshot(folder: Path) -> set:
    """Names, sizes and modification times of the files in ``folder`` (recursively)."""
    return {(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file()} if folder.exists() else set()


def kill_at_random(args, folder: Path, span: float, rng, kills: int, done, restart=None,
                   cwd=None, probe=None) -> dict:
    """SIGKILL ``deepseg ARGS`` ``kills`` times, each at a random moment of its work.

    The work began when a file in ``folder`` changes (kills before that would only test the
    interpreter's start-up); the kill comes a uniform random ``[0, span)`` s later.
    A run that ends before its kill must have completed (``done()``); ``restart()`` then
    resets the outputs so that the next kills meet a fresh run. ``probe()`` describes the
    state each kill left (kept in ``states``). Returns the counts.
    """
    counts = {"kills": 0, "completed": 0, "runs": 0, "states": []}
    while counts["kills"] < kills:
        before = snapshot(folder)
        proc = start(*args, cwd=cwd)
        counts["runs"] += 1
        delay = rng.uniform(0, span)
        if wait_for(lambda: snapshot(folder) != before, proc):
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                proc.stdout.close()
                counts["kills"] += 1
                if probe is not None:
                    counts["states"].append(probe())
                continue
        out = proc.stdout.read()
        proc.stdout.close()
        proc.wait()
        assert proc.returncode == 0, f"exit {proc.returncode}: {out}"
        assert done(), f"finished without the expected outputs: {out}"
        counts["completed"] += 1
        if restart is not None:
            restart()
    return counts

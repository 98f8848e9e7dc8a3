"""Faults from outside the process: the CLI in a subprocess (SIGKILLed at random moments),
real small tmpfs mounts, bytes overwritten in real files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
       "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "ignore"}


def deepseg(*args, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m deepseg_core.cli ARGS`` in a subprocess and capture its output."""
    return subprocess.run([sys.executable, "-m", "deepseg_core.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=ENV, **kwargs)


def assert_one_line_error(result, *fragments):
    """Non-zero exit, no traceback, no crash, and one 'error:' line holding every fragment."""
    assert result.returncode not in (0, -11, 139), (result.returncode, result.stderr[-3000:])
    assert result.returncode > 0, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def need_root():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, free: int | None = None):
    """A real tmpfs of ``size`` mounted at ``folder``; with ``free``, filled by a ballast file
    until about ``free`` bytes are left. Skips the test when it cannot be mounted."""
    need_root()
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs at {folder}: {done.stderr.strip()}")
    try:
        if free is not None:
            fill(folder, free)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, free: int) -> None:
    """Write a ballast file in ``folder`` until at most ``free`` bytes are left."""
    stat = os.statvfs(folder)
    avail = stat.f_bavail * stat.f_frsize
    ballast = folder / ".ballast"
    with open(ballast, "ab") as handle:
        handle.write(b"\0" * max(0, avail - free))


def remount_readonly(folder: Path) -> None:
    """Make the tmpfs at ``folder`` read-only (writes then fail with EROFS)."""
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def overwrite_middle(path: Path, nbytes: int = 4096, value: int = 0x5A) -> int:
    """Overwrite ``nbytes`` in the middle of ``path`` with ``value``; returns the offset."""
    size = path.stat().st_size
    offset = size // 2
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(bytes([value]) * nbytes)
    return offset


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
        if wait_for(lambda before=before: snapshot(folder) != before, proc):
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

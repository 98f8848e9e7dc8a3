"""Faults from outside the process: the CLI in a subprocess, real small tmpfs mounts, bytes
overwritten in real files."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow",
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

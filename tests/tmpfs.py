"""A real small filesystem for full-disk tests: a tmpfs mounted as root (skips elsewhere)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


class Tmpfs:
    """A tmpfs at ``path`` whose size can change while files stay on it."""

    def __init__(self, path: Path, size: int):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._mount("-o", f"size={size}", "-t", "tmpfs", "tmpfs")

    def _mount(self, *options: str) -> None:
        done = subprocess.run(["mount", *options, str(self.path)], capture_output=True,
                              text=True)
        if done.returncode:
            raise OSError(done.stderr.strip() or f"mount {' '.join(options)} failed")

    def resize(self, size: int) -> None:
        self._mount("-o", f"remount,size={size}")

    def read_only(self, yes: bool = True) -> None:
        self._mount("-o", "remount,ro" if yes else "remount,rw")

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """``make(size)`` -> a mounted Tmpfs (unmounted after the test)."""
    if os.geteuid() != 0:
        pytest.skip("full-disk tests mount a tmpfs, which needs root (CI runs as root)")
    mounted = []

    def make(size: int, name: str = "disk") -> Tmpfs:
        try:
            fs = Tmpfs(tmp_path / name, size)
        except OSError as exc:
            pytest.skip(f"cannot mount a tmpfs here: {exc}")
        mounted.append(fs)
        return fs

    yield make
    for fs in mounted:
        fs.unmount()

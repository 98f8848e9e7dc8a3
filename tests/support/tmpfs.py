"""The one real small filesystem of the suite: a tmpfs mounted as root (tests skip elsewhere).

``Tmpfs`` can be resized, filled with a ballast file up to a few bytes of free space, made
read-only and writable again while its files stay on it; ``mounted`` is the same as a context
manager, and the ``small_disk`` fixture (tests.support.fixtures) unmounts what a test mounted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


def need_root() -> None:
    """Skip the test unless it runs as root (CI runs the suite as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")


class Tmpfs:
    """A tmpfs of ``size`` (bytes, or a mount size such as '96k') at ``path``."""

    def __init__(self, path: Path, size: int | str):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs")

    def _mount(self, *options: str) -> None:
        done = subprocess.run(["mount", *options, str(self.path)], capture_output=True,
                              text=True)
        if done.returncode:
            raise OSError(done.stderr.strip() or f"mount {' '.join(options)} failed")

    def resize(self, size: int | str) -> None:
        self._mount("-o", f"remount,size={size}")

    def read_only(self, yes: bool = True) -> None:
        self._mount("-o", "remount,ro" if yes else "remount,rw")

    def fill(self, free: int) -> None:
        """Write a ballast file until at most ``free`` bytes are left."""
        stat = os.statvfs(self.path)
        with open(self.path / ".ballast", "ab") as handle:
            handle.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free))

    def grow(self, size: int | str = "64m") -> None:
        """Space again: writable, ``size``, the ballast gone."""
        self._mount("-o", f"remount,rw,size={size}")
        (self.path / ".ballast").unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


def mount(path: Path, size: int | str) -> Tmpfs:
    """A mounted Tmpfs, or a skipped test where none can be mounted."""
    need_root()
    try:
        return Tmpfs(path, size)
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs at {path}: {exc}")


@contextlib.contextmanager
def mounted(path: Path, size: int | str, free: int | None = None, read_only: bool = False):
    """``with mounted(folder, '1m', free=0) as disk:`` a Tmpfs (filled until ``free`` bytes
    are left, or read-only), unmounted at the end."""
    disk = mount(path, size)
    try:
        if free is not None:
            disk.fill(free)
        if read_only:
            disk.read_only()
        yield disk
    finally:
        disk.unmount()

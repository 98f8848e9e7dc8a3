"""Damage done to real files from outside, as a failing disk or a killed copy would."""

from __future__ import annotations

from pathlib import Path


def overwrite_middle(path: Path, nbytes: int = 4096, value: int = 0x5A) -> int:
    """Overwrite ``nbytes`` in the middle of ``path`` with ``value``; returns the offset."""
    offset = path.stat().st_size // 2
    overwrite(path, offset, bytes([value]) * nbytes)
    return offset


def overwrite(path: Path, offset: int, data: bytes) -> None:
    """Write ``data`` over ``path`` at ``offset`` in place."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def flip_bit(path: Path, offset: int) -> None:
    """Flip the lowest bit of the byte at ``offset``."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0x01]))


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut ``path`` to the first ``keep`` of its bytes."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])

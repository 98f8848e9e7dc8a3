"""Durable file updates: data reaches the disk before anything that says it is there.

``write_atomic`` writes a temporary file, fsyncs it, renames it over the target and fsyncs
the folder, so a reader sees the old content or the new one, never a torn mix, whatever
instant the process or the node dies. I/O errors become one-line DeepSegErrors.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import DeepSegError


def io_error(path, exc: OSError, doing: str = "cannot write") -> DeepSegError:
    """``path: doing (cause)`` as one line."""
    return DeepSegError(f"{path}: {doing} ({exc.strerror or exc})")


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make renames and deletions in folder ``path`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a folder; the rename itself is atomic
        pass
    finally:
        os.close(fd)


def replace_durably(tmp: Path, path: Path) -> None:
    """fsync ``tmp`` (and its GDAL sidecars), rename them to ``path`` and fsync the folder."""
    from .sidecars import replace_output, sidecars

    try:
        for file in [tmp, *sidecars(tmp)]:
            if file.exists():
                fsync_file(file)
        replace_output(tmp, path)
    except OSError as exc:
        raise io_error(path, exc) from None
    fsync_dir(path.parent)


def temporary_name(path: Path) -> Path:
    """The temporary beside ``path`` that ``write_atomic`` writes first (one writer a file)."""
    return path.with_name(f".{path.name}.tmp")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` all at once, durably."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise io_error(path, exc) from None
    fsync_dir(path.parent)


def full_disk_hint(folder: Path) -> str:
    """'; no space left on device ...' where ``folder``'s filesystem is (nearly) full: GDAL's
    and SQLite's messages often say only 'IO error' or name a table they could not write."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return ""
    nearly_full = usage.free < max(1 << 20, usage.total // 10)
    return "; no space left on device: free space and rerun" if nearly_full else ""

"""Atomic file writes: a file is either absent, the old version, or the new one complete.

Write to ``.<name>.tmp`` beside the target (one writer a file), fsync it, ``os.replace`` it
into place, fsync the folder. A failed write (ENOSPC, EIO, EROFS, ...) leaves the old file as
it was, removes the temporary file and raises one ``DeepSegError`` line naming the path and
the cause.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import io_error

if TYPE_CHECKING:
    from _typeshed import StrPath


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def discard(path: Path) -> None:
    """Delete ``path`` if it is there; a filesystem that refuses (EROFS) must not hide the
    error being reported."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass


def temporary(path: Path) -> Path:
    """The temporary name a new version of ``path`` is written under (a killed writer's is
    overwritten by the next one, never left to pile up)."""
    return Path(path).with_name(f".{Path(path).name}.tmp")


@contextlib.contextmanager
def replacing(path: StrPath, what: str = "cannot write") -> Iterator[Path]:
    """``with replacing(path) as tmp:`` write ``tmp`` (any library); it replaces ``path`` only
    when the block succeeds, durably; OSError becomes one DeepSegError line naming ``path``."""
    target = Path(path)
    tmp = temporary(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        commit(tmp, target)
    except OSError as exc:
        discard(tmp)
        raise io_error(target, exc, what) from None
    except BaseException:
        discard(tmp)
        raise


def commit(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, rename it to ``path`` and fsync the folder (raises OSError)."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: Path, path: Path) -> None:
    """fsync ``tmp`` (and its GDAL sidecars), rename them to ``path`` and fsync the folder;
    OSError becomes one DeepSegError line."""
    from .sidecars import replace_output, sidecars

    try:
        for file in [tmp, *sidecars(tmp)]:
            if file.exists():
                fsync_file(file)
        replace_output(tmp, path)
    except OSError as exc:
        raise io_error(path, exc) from None
    fsync_dir(Path(path).parent)


def write_bytes(path: StrPath, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with replacing(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
    return Path(path)


def write_text(path: StrPath, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode(encoding))


@contextlib.contextmanager
def staged(folder: StrPath, label: str) -> Iterator[Path]:
    """``with staged(folder, stem) as stage:`` write several files into ``stage``; they are
    moved into ``folder`` only when all of them were written (reports: no half-written HTML
    next to a complete CSV). OSError becomes one DeepSegError naming ``folder/label``."""
    target = Path(folder)
    stage = target / f".staging-{os.getpid()}"
    try:
        stage.mkdir(parents=True, exist_ok=True)
        yield stage
        for name in sorted(p.name for p in stage.iterdir()):
            commit(stage / name, target / name)
        stage.rmdir()
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise io_error(target / label, exc) from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def full_disk_hint(folder: Path) -> str:
    """'; no space left on device ...' where ``folder``'s filesystem is (nearly) full: GDAL's
    and SQLite's messages often say only 'IO error' or name a table they could not write."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return ""
    nearly_full = usage.free < max(1 << 20, usage.total // 10)
    return "; no space left on device: free space and rerun" if nearly_full else ""

"""Atomic file writes: a file is either absent, the old version, or the new one complete.

Write to a temporary name beside the target, fsync it, ``os.replace`` it into place, fsync the
folder. A failed write (ENOSPC, EIO, EROFS, ...) leaves the old file as it was, removes the
temporary file and raises one ``DeepSegError`` line naming the path and the cause; so does a
folder whose fsync fails (only a filesystem that cannot fsync folders at all is excused).

Temporary names are unique, ``.<name>.<host>.<pid>.<random>.tmp``, and created with
``O_CREAT | O_EXCL | O_NOFOLLOW``: in a group-writable folder a link planted at a predictable
name cannot redirect the write. A killed writer's temporary is removed by the next write of
the same file on that host once its process is gone, so they never pile up.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import io_error

if TYPE_CHECKING:
    from _typeshed import StrPath


#: what a filesystem that cannot fsync a folder answers (the rename is as durable as it gets)
NO_DIR_FSYNC = (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EISDIR)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable; OSError (EIO, ...) propagates."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


def discard(path: Path) -> None:
    """Delete ``path`` if it is there; a filesystem that refuses (EROFS) must not hide the
    error being reported."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass


def temporary(path: StrPath) -> Path:
    """A new, empty file beside ``path`` to write its next version under: a unique name,
    created exclusively and never through a link (raises OSError)."""
    target = Path(path)
    for stale in temporaries(target):
        _remove_if_orphaned(stale)
    host = socket.gethostname().replace(".", "-")
    tmp = target.with_name(f".{target.name}.{host}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
    return tmp


def temporaries(path: StrPath) -> list[Path]:
    """The temporary files of ``path`` there are (live writers' and killed ones')."""
    target = Path(path)
    return sorted(target.parent.glob(f".{glob_escape(target.name)}.*.tmp"))


def glob_escape(name: str) -> str:
    """``name`` as a glob pattern matching itself only."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _remove_if_orphaned(tmp: Path) -> None:
    """Delete a temporary of this host whose writer process is gone."""
    parts = tmp.name.rsplit(".", 4)  # [.<name>, host, pid, token, tmp]
    if len(parts) != 5 or parts[1] != socket.gethostname().replace(".", "-"):
        return
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        discard(tmp)
    except (ValueError, PermissionError):
        pass


@contextlib.contextmanager
def replacing(path: StrPath, what: str = "cannot write") -> Iterator[Path]:
    """``with replacing(path) as tmp:`` write ``tmp`` (any library); it replaces ``path`` only
    when the block succeeds, durably; OSError becomes one DeepSegError line naming ``path``."""
    target = Path(path)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary(target)
        yield tmp
        commit(tmp, target)
    except OSError as exc:
        if tmp is not None:
            discard(tmp)
        raise io_error(target, exc, what) from None
    except BaseException:
        if tmp is not None:
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
        fsync_dir(Path(path).parent)
    except OSError as exc:
        raise io_error(path, exc) from None


def write_bytes(path: StrPath, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with replacing(path) as tmp, open(tmp, "wb") as handle:  # our new file, no link
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
    stage = target / f".staging-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        stage.mkdir()  # a new folder: never one planted at a predictable name
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

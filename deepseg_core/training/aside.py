"""The previous run's files moved aside before a fresh run writes anything (runs.py says
when): ``model/`` and ``logs/`` go to ``previous/`` (one earlier run kept, so the file count
stays bounded); a run that never committed a checkpoint has its files deleted in place.

The move is crash-safe: the folders are renamed into ``.previous.new/`` one by one, then
``previous/`` is renamed to ``.previous.old/``, ``.previous.new/`` to ``previous/``, and the
leftovers deleted. Every run's chief first finishes a move that a kill interrupted, and every
worker counts a run on its way out as no run, so all decide the same. Only a run's own files
are deleted (RUN_FILES): whatever else a user put into model/ or logs/ stays.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

from ..errors import io_error
from ..io.atomic import fsync_dir
from . import checkpoint

log = logging.getLogger(__name__)

MOVED = ("model", "logs")  # a run's folders
PREVIOUS, KEEPING, DROPPING, OLD = "previous", ".previous.new", ".previous.drop", ".previous.old"


def set_aside(outdir: Path) -> None:
    """Move the previous run's files to ``previous/``, or delete them when it never committed
    a checkpoint (the module docstring says how a kill in between is survived)."""
    finish_move(outdir)
    present = [name for name in MOVED if _run_files(outdir / name)]
    if not present:
        return
    model = outdir / "model"
    keep = any((model / name).exists() for name in (checkpoint.STATE, *checkpoint.FILES))
    names = " and ".join(f"{name}/" for name in present)
    if not keep:  # nothing worth keeping: deleted in place (a folder may be a mount point)
        for name in present:
            _clear(_run_files(outdir / name), outdir / name)
        log.info(f"training: deleted {names} in {outdir}: a run that ended before its first "
                 "checkpoint")
        return
    replaced = (outdir / PREVIOUS).exists()
    try:
        (outdir / KEEPING).mkdir(exist_ok=True)
    except OSError as exc:
        raise io_error(exc.filename or outdir, exc, "cannot move the previous run aside") \
            from None
    finish_move(outdir)
    log.info(f"training: the previous run's {names} moved to {outdir / PREVIOUS}/"
             + (" (replacing the run kept there)" if replaced else ""))


#: the files a run writes into model/ and logs/ (and their temporaries); nothing else is
#: deleted there, whoever put it there
RUN_FILES = ("model.json", "state.json", "*.keras", "training.csv", "curves.png", ".*.tmp")


def _run_files(folder: Path) -> list[Path]:
    """The files of a run in ``folder``: RUN_FILES and the TensorBoard event files."""
    if not folder.is_dir():
        return []
    found = {p for pattern in RUN_FILES for p in folder.glob(pattern) if p.is_file()}
    found |= {p for p in (folder / "tensorboard").rglob("events.out.tfevents.*") if p.is_file()}
    return sorted(found)


def _clear(files: list[Path], folder: Path) -> None:
    """Delete a run's ``files`` in ``folder`` and the folders that hold only them (a mount
    point stays): idempotent, so a kill in the middle is finished by the next run."""
    try:
        for path in files:
            path.unlink(missing_ok=True)
        for root, dirs, _ in os.walk(folder / "tensorboard", topdown=False):
            for name in dirs:
                with contextlib.suppress(OSError):
                    os.rmdir(Path(root, name))
        fsync_dir(folder)
    except OSError as exc:
        raise io_error(exc.filename or folder, exc, "cannot delete the previous run's files") \
            from None


def finish_move(outdir: Path) -> None:
    """Finish (or do) the move that ``set_aside`` began: idempotent, so a kill anywhere in it
    is finished by the next run without losing or mixing files."""
    keeping, dropping, old = outdir / KEEPING, outdir / DROPPING, outdir / OLD
    try:
        for stage in (keeping, dropping):
            if stage.exists():
                for name in MOVED:
                    if (outdir / name).exists():
                        os.rename(outdir / name, stage / name)
                fsync_dir(stage)
        if keeping.exists():
            if (outdir / PREVIOUS).exists():
                shutil.rmtree(old, ignore_errors=True)
                os.rename(outdir / PREVIOUS, old)
            os.rename(keeping, outdir / PREVIOUS)
            fsync_dir(outdir)
        for leftover in (dropping, old):
            if leftover.exists():
                shutil.rmtree(leftover)
        fsync_dir(outdir)
    except OSError as exc:
        raise io_error(exc.filename or outdir, exc, "cannot move the previous run aside") \
            from None

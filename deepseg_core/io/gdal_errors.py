"""GDAL's error state while a raster is written: libtiff/GDAL report a full disk only through
GDAL's error handler (rasterio logs it at INFO) and lines libtiff prints to stderr, while the
Python calls return normally and leave an unreadable file.

``with gdal_errors(path):`` records both and, when GDAL signalled an error, raises one
DeepSegError naming ``path`` and the cause (the caller deletes the raster); otherwise what was
printed on stderr meanwhile is passed on unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

from ..errors import DeepSegError

CAUSES = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES)
SIGNALLED = "GDAL signalled an error"


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR or SIGNALLED in message:
            self.messages.append(" ".join(message.split()))


def cause_of(messages: list[str]) -> str:
    """The operating system's words for the cause, if a message holds them, else the first."""
    for code in CAUSES:
        if any(os.strerror(code) in m for m in messages):
            return os.strerror(code)
    return messages[0][:200]


@contextlib.contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """fd 2 into a temporary file for the block; yields a list that receives its lines."""
    lines: list[str] = []
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode(errors="replace").splitlines())


@contextlib.contextmanager
def gdal_errors(path: object) -> Iterator[None]:
    """Raise one DeepSegError after the block when GDAL reported an error writing ``path``."""
    import rasterio

    logger, keep = logging.getLogger("rasterio"), _Keep()
    logger.addHandler(keep)
    level = logger.level
    logger.setLevel(logging.INFO)
    propagate, logger.propagate = logger.propagate, False
    try:
        with _stderr_captured() as printed, rasterio.Env():
            yield
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
        logger.propagate = propagate
        if not keep.messages and printed:
            sys.stderr.write("\n".join(printed) + "\n")
    if keep.messages:
        raise DeepSegError(f"{path}: writing the raster failed "
                           f"({cause_of(printed + keep.messages)}); free space and rerun")

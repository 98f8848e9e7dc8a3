"""An HDF5 file that survives a failed write (full disk, EIO, read-only filesystem).

When libhdf5 itself meets ENOSPC, the error is sticky: closing the file fails again and the
process then segfaults while h5py frees its objects (seen with h5py 3.14 on a full tmpfs).
So the file is opened through h5py's ``fileobj`` driver on a :class:`GuardedIO`: the first
OSError is recorded, later writes are dropped, HDF5 closes cleanly, and the caller raises the
recorded error and deletes the file, which can never pass for complete.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import h5py

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer


class GuardedIO(io.RawIOBase):
    """An unbuffered binary file that records its first OSError and then drops writes."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        # a new file, never through a link planted at its name: closed in close()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        self.raw_file = os.fdopen(fd, "w+b", buffering=0)
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw_file.seek(offset, whence)

    def tell(self) -> int:
        return self.raw_file.tell()

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        return self.raw_file.readinto(buffer)

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data).cast("B")
        start, size = self.raw_file.tell(), len(view)
        if self.error is None:
            try:
                done = 0
                while done < size:
                    done += self.raw_file.write(view[done:])
                return size
            except OSError as exc:
                self.error = exc
        self.raw_file.seek(start + size)
        return size

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self.raw_file.truncate(size)
            except OSError as exc:
                self.error = exc
        return self.raw_file.tell() if size is None else size  # the size it would have

    def flush(self) -> None:
        pass  # unbuffered: nothing to flush

    def close(self) -> None:
        if not self.closed:
            try:
                self.raw_file.close()
            except OSError as exc:
                self.error = self.error or exc
        super().close()


def create_guarded(path: Path) -> tuple[h5py.File, GuardedIO]:
    """A new HDF5 file at ``path`` (raises OSError when it cannot be created)."""
    guard = GuardedIO(path)
    try:
        return h5py.File(guard, "w"), guard
    except BaseException:
        guard.close()
        raise

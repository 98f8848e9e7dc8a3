"""The working file of a prediction (one per shard): results land here tile by tile.

An HDF5 file beside the output, chunked and compressed, holding the class raster (and the
probabilities) of the shard's rows plus ``done``: how many of the shard's tiles are written
and flushed. A killed run reopens it and continues after ``done``; the final output is only
assembled from partials marked complete, so an incomplete prediction never passes for done.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from ..errors import DeepSegError
from ..raster import Window
from ..store import create_hdf5

CHUNK = 256


class Partial:
    """Rows ``row0..row1`` (full width) of the prediction, resumable."""

    def __init__(self, path: Path, row0: int, row1: int, width: int, layers: dict,
                 key: dict):
        """``layers``: name -> (bands, dtype, fill); ``key`` identifies the run's settings."""
        self.path, self.row0, self.row1, self.width = Path(path), row0, row1, width
        fresh = True
        if self.path.exists():
            try:
                self.file = h5py.File(self.path, "r+")
                fresh = json.loads(self.file.attrs["key"]) != key
                if fresh:
                    self.file.close()
            except (OSError, KeyError, ValueError):
                fresh = True
        if fresh:
            self.file = create_hdf5(self.path, "predict.output")
            self.file.attrs.update(key=json.dumps(key), done=0, complete=False,
                                   row0=row0, row1=row1)
            height = max(row1 - row0, 1)
            for name, (bands, dtype, fill) in layers.items():
                self.file.create_dataset(
                    name, (bands, height, width), dtype=dtype, fillvalue=fill,
                    chunks=(1, min(CHUNK, height), min(CHUNK, width)),
                    compression="gzip", compression_opts=1, shuffle=True)
            self.file.flush()

    @property
    def done(self) -> int:
        return int(self.file.attrs["done"])

    @property
    def complete(self) -> bool:
        return bool(self.file.attrs["complete"])

    def write(self, name: str, array: np.ndarray, window: Window) -> None:
        """Write ``(bands, rows, cols)`` at a raster window lying inside this shard's rows."""
        rows = slice(window.row_off - self.row0, window.row_off - self.row0 + window.height)
        try:
            self.file[name][:, rows, window.col_off:window.col_off + window.width] = array
        except OSError as exc:
            raise self._failed(exc) from None

    def read(self, name: str, window: Window) -> np.ndarray:
        r = window.row_off - self.row0
        return self.file[name][:, r:r + window.height, window.col_off:window.col_off + window.width]

    def checkpoint(self, done: int, complete: bool = False) -> None:
        """Flush written tiles to disk, then record how many are done."""
        try:
            self.file.flush()
            self.file.attrs["done"] = done
            self.file.attrs["complete"] = complete
            self.file.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> DeepSegError:
        return DeepSegError(f"{self.path}: writing the prediction failed ({exc}); free space "
                            "and rerun the same command: it resumes after the last saved tile")

    def close(self) -> None:
        self.file.close()


def open_complete(path: Path, key: dict) -> h5py.File:
    """A finished partial for reading (error if missing, unfinished or from other settings)."""
    if not path.exists():
        raise DeepSegError(f"{path}: prediction shard missing; run its 'deepseg predict "
                           "--shard' first")
    handle = h5py.File(path, "r")
    if json.loads(handle.attrs["key"]) != key or not handle.attrs["complete"]:
        handle.close()
        raise DeepSegError(f"{path}: prediction shard is unfinished or from other settings; "
                           "rerun its 'deepseg predict --shard'")
    return handle

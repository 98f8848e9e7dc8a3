"""Writing a new store: tiles appended under a temporary name, renamed when complete.

The layout is described in ``deepseg_core.store`` (and docs/store.md). Every dataset carries
HDF5's Fletcher32 checksums (checked by :mod:`.checksums` before a store is reused); the file
goes through :mod:`.guarded`, so a full disk is one error, never a crash.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from .. import __version__
from ..errors import io_error
from ..io.atomic import commit, discard
from .guarded import create_guarded

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from numpy.typing import ArrayLike, DTypeLike

TILE_DTYPE = np.dtype([("row", "i8"), ("col", "i8"), ("fold", "i2"), ("geotransform", "f8", (6,)),
                       ("scene", "i2")])


class StoreWriter:
    """Appends tiles to a new store under a temporary name; ``commit()`` makes it final.

    A failed write (full disk, EIO, read-only) raises one DeepSegError naming the store and
    the cause; ``abort()`` then deletes the temporary file."""

    def __init__(self, path: Path, tilesize: int, nbands: int, dtype: DTypeLike, instance: bool,
                 compression: str = "gzip") -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}-"
                                       f"{secrets.token_hex(4)}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file, self.guard = create_guarded(self.tmp)
        except OSError as exc:
            raise io_error(self.path, exc, "cannot write the store (store.path)") from None
        comp = None if compression == "none" else compression
        kw: dict[str, Any] = dict(compression=comp, shuffle=comp is not None, fletcher32=True)
        t = tilesize
        self.images = self.file.create_dataset("images", (0, t, t, nbands), dtype=dtype,
                                               maxshape=(None, t, t, nbands),
                                               chunks=(1, t, t, nbands), **kw)
        name, ldtype = ("instances", "uint32") if instance else ("labels", "uint16")
        self.labels = self.file.create_dataset(name, (0, t, t), dtype=ldtype,
                                               maxshape=(None, t, t), chunks=(1, t, t), **kw)
        self.valid = self.file.create_dataset("valid", (0, t, t), dtype="uint8",
                                              maxshape=(None, t, t), chunks=(1, t, t), **kw)
        #: (row, col, fold, geotransform, scene) of each tile added
        self.tiles: list[tuple[int, int, int, tuple[float, ...], int]] = []

    def add(self, image: np.ndarray, label: np.ndarray, valid: np.ndarray, row: int, col: int,
            geotransform: Sequence[float], scene: int = 0) -> None:
        """Append one tile of training scene ``scene``: image ``(T, T, B)``, label and valid
        ``(T, T)``; ``row``/``col`` in the frame shared by the scenes."""
        n = len(self.tiles)
        for ds, value in ((self.images, image), (self.labels, label), (self.valid, valid)):
            ds.resize(n + 1, axis=0)
            ds[n] = value
        self._check()
        self.tiles.append((row, col, 0, tuple(geotransform), scene))

    def _check(self) -> None:
        exc = self.guard.error
        if exc is not None:
            raise io_error(self.path, exc, "writing the store failed",
                           "free space and rerun 'deepseg dataprep'")

    def _dataset(self, name: str, data: np.ndarray) -> h5py.Dataset:
        return self.file.create_dataset(name, data=data, fletcher32=True)

    def commit(self, folds: np.ndarray, attrs: dict[str, Any], stats: Mapping[str, ArrayLike],
               class_counts: ArrayLike, instance_classes: dict[int, int] | None = None) -> None:
        """Write tiles, folds, statistics and attributes; rename to the final path."""
        table = np.array(self.tiles, dtype=TILE_DTYPE)
        table["fold"] = folds
        self._dataset("tiles", table)
        for key, value in stats.items():
            self._dataset(f"stats/{key}", np.asarray(value))
        self._dataset("class_counts", np.asarray(class_counts, dtype=np.int64))
        if instance_classes is not None:
            table = np.zeros(max(instance_classes, default=0) + 1, dtype=np.int32)
            for iid, cls in instance_classes.items():
                table[iid] = cls
            self._dataset("instance_classes", table)
        for key, value in attrs.items():
            self.file.attrs[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        self.file.attrs["deepseg_version"] = __version__
        self.file.attrs["complete"] = True
        self.file.close()
        self.guard.close()
        self._check()
        try:
            commit(self.tmp, self.path)
        except OSError as exc:
            self.guard.error = exc
            self._check()

    def abort(self) -> None:
        """Close and delete the temporary file."""
        try:
            if self.file.id.valid:
                self.file.close()
            self.guard.close()
        finally:
            discard(self.tmp)

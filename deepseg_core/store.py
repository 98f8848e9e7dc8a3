"""The HDF5 store: one file holding every training tile, its labels, windows, folds and stats.

Layout (docs/store.md)::

    /images     (N, T, T, B)  source dtype, chunk (1, T, T, B), compressed
    /labels     (N, T, T)     uint16 class ids (semantic)  -- or --
    /instances  (N, T, T)     uint32 instance ids + /instance_classes (M,) class of id 1..M
    /valid      (N, T, T)     uint8, 1 where every image source has data
    /tiles      (N,) compound row, col, fold, geotransform[6], scene
    /stats/{count,mean,std,min,max}  per band, over valid grid pixels
    /class_counts (C,)        labelled pixels per class (tile cores: each pixel once)
    attrs       crs, transform, width, height, scenes, tilesize, overlap, nbands, band_names,
                classes, colours, segmentation_type, folds, settings_hash, deepseg_version,
                complete

It is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .atomic import commit, discard
from .errors import DeepSegError
from .h5guard import create_guarded
from .store_check import damage


def create_hdf5(path: Path, setting: str, shown: Path | None = None) -> h5py.File:
    """A new HDF5 file at ``path``, its folder made; a DeepSegError naming ``setting`` and
    ``shown`` (default ``path``) when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return h5py.File(path, "w")
    except OSError as exc:
        raise DeepSegError(f"{setting}: cannot write {shown or path} "
                           f"({exc.strerror or exc})") from None


TILE_DTYPE = np.dtype([("row", "i8"), ("col", "i8"), ("fold", "i2"), ("geotransform", "f8", (6,)),
                       ("scene", "i2")])


class StoreWriter:
    """Appends tiles to a new store under a temporary name; ``commit()`` makes it final.

    A failed write (full disk, EIO, read-only) raises one DeepSegError naming the store and
    the cause; ``abort()`` then deletes the temporary file."""

    def __init__(self, path: Path, tilesize: int, nbands: int, dtype, instance: bool,
                 compression: str = "gzip"):
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file, self.guard = create_guarded(self.tmp)
        except OSError as exc:
            raise DeepSegError(f"store.path: cannot write {self.path} "
                               f"({exc.strerror or exc})") from None
        comp = None if compression == "none" else compression
        kw = dict(compression=comp, shuffle=comp is not None, fletcher32=True)
        t = tilesize
        self.images = self.file.create_dataset("images", (0, t, t, nbands), dtype=dtype,
                                               maxshape=(None, t, t, nbands),
                                               chunks=(1, t, t, nbands), **kw)
        name, ldtype = ("instances", "uint32") if instance else ("labels", "uint16")
        self.labels = self.file.create_dataset(name, (0, t, t), dtype=ldtype,
                                               maxshape=(None, t, t), chunks=(1, t, t), **kw)
        self.valid = self.file.create_dataset("valid", (0, t, t), dtype="uint8",
                                              maxshape=(None, t, t), chunks=(1, t, t), **kw)
        self.tiles: list[tuple] = []

    def add(self, image: np.ndarray, label: np.ndarray, valid: np.ndarray, row: int, col: int,
            geotransform, scene: int = 0) -> None:
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
            raise DeepSegError(f"store.path: writing the store {self.path} failed "
                               f"({exc.strerror or exc}); free space and rerun "
                               "'deepseg dataprep'")

    def _dataset(self, name, data):
        return self.file.create_dataset(name, data=data, fletcher32=True)

    def commit(self, folds: np.ndarray, attrs: dict, stats: dict, class_counts,
               instance_classes=None) -> None:
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


class Store:
    """Read access to a complete store (one handle per process; reopen in each worker)."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise DeepSegError(f"{self.path}: store not found; run 'deepseg dataprep' first")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as exc:
            raise DeepSegError(f"{self.path}: not a readable HDF5 store ({exc}); delete it "
                               "and rerun 'deepseg dataprep'") from None
        try:
            if not self.file.attrs.get("complete", False):
                raise DeepSegError(f"{self.path}: store is incomplete; rerun 'deepseg dataprep'")
            self.attrs = {k: decode_attr(v) for k, v in self.file.attrs.items()}
            self.instance = "instances" in self.file
            self.tiles = self.file["tiles"][:]
        except (OSError, KeyError) as exc:
            self.file.close()
            raise self.damaged("the tile table", exc) from None
        except DeepSegError:
            self.file.close()
            raise

    def __len__(self):
        return len(self.tiles)

    @property
    def labels(self):
        return self.file["instances" if self.instance else "labels"]

    def stats(self) -> dict[str, np.ndarray]:
        return {k: self.file["stats"][k][:] for k in self.file["stats"]}

    def class_counts(self) -> np.ndarray:
        return self.file["class_counts"][:]

    def instance_classes(self) -> np.ndarray | None:
        return self.file["instance_classes"][:] if "instance_classes" in self.file else None

    def tile(self, index: int):
        """(image (T, T, B), label (T, T), valid (T, T)) of tile ``index``."""
        try:
            return (self.file["images"][index], self.labels[index],
                    self.file["valid"][index].astype(bool))
        except OSError as exc:
            raise self.damaged(f"tile {index}", exc) from None

    def damaged(self, what: str, exc: Exception) -> DeepSegError:
        """One line naming the store, the damaged part and the fix."""
        cause = " ".join(str(exc).split())
        return DeepSegError(f"store {self.path}: {what} is damaged ({cause}); delete the "
                            "store and rerun 'deepseg dataprep' to rebuild it")

    def verify(self) -> None:
        """Check every chunk of every dataset against its Fletcher32 checksum (and the chunk
        count); a DeepSegError names the first damaged tile or dataset and the fix."""
        problem = self.problem()
        if problem is not None:
            raise self.damaged(*problem)

    def problem(self) -> tuple[str, Exception] | None:
        """(damaged part, why) found by the checksum check (store_check.py), or None."""
        try:
            found = damage(self.file, self.path)
        except OSError as exc:
            return "the file", exc
        if found is None:
            return None
        name, index, why = found
        tiled = name in ("images", "labels", "instances", "valid") and index is not None
        return (f"tile {index} ({name})" if tiled else f"dataset {name}"), OSError(why)

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode_attr(value):
    """An HDF5 attribute as Python: bytes decoded, JSON lists and dicts parsed."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value

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
from .errors import DeepSegError


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
    """Appends tiles to a new store under a temporary name; ``commit()`` makes it final."""

    def __init__(self, path: Path, tilesize: int, nbands: int, dtype, instance: bool,
                 compression: str = "gzip"):
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        self.file = create_hdf5(self.tmp, "store.path", self.path)
        comp = None if compression == "none" else compression
        kw = dict(compression=comp, shuffle=comp is not None)
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
        self.tiles.append((row, col, 0, tuple(geotransform), scene))

    def commit(self, folds: np.ndarray, attrs: dict, stats: dict, class_counts,
               instance_classes=None) -> None:
        """Write tiles, folds, statistics and attributes; rename to the final path."""
        table = np.array(self.tiles, dtype=TILE_DTYPE)
        table["fold"] = folds
        self.file.create_dataset("tiles", data=table)
        group = self.file.create_group("stats")
        for key, value in stats.items():
            group.create_dataset(key, data=np.asarray(value))
        self.file.create_dataset("class_counts", data=np.asarray(class_counts, dtype=np.int64))
        if instance_classes is not None:
            table = np.zeros(max(instance_classes, default=0) + 1, dtype=np.int32)
            for iid, cls in instance_classes.items():
                table[iid] = cls
            self.file.create_dataset("instance_classes", data=table)
        for key, value in attrs.items():
            self.file.attrs[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        self.file.attrs["deepseg_version"] = __version__
        self.file.attrs["complete"] = True
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Close and delete the temporary file."""
        try:
            self.file.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class Store:
    """Read access to a complete store (one handle per process; reopen in each worker)."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise DeepSegError(f"{self.path}: store not found; run 'deepseg dataprep' first")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as exc:
            raise DeepSegError(f"{self.path}: not a readable HDF5 store ({exc})") from None
        if not self.file.attrs.get("complete", False):
            self.file.close()
            raise DeepSegError(f"{self.path}: store is incomplete; rerun 'deepseg dataprep'")
        self.attrs = {k: _decode(v) for k, v in self.file.attrs.items()}
        self.instance = "instances" in self.file
        self.tiles = self.file["tiles"][:]

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
        return (self.file["images"][index], self.labels[index],
                self.file["valid"][index].astype(bool))

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _decode(value):
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


def existing_store_matches(path: Path, settings_hash: str) -> bool:
    """True when ``path`` is a complete, readable store built from the same data settings."""
    if not path.exists():
        return False
    try:
        with Store(path) as store:
            return store.attrs.get("settings_hash") == settings_hash and len(store.tiles) >= 0
    except (DeepSegError, OSError, KeyError):
        return False

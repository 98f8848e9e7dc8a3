"""Which store an experiment uses: the hash of its data settings, the store's path, and the
store opened for reading after a check that it was built for the experiment (dataprep, train,
crossval and hpc all ask here)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeepSegError
from ..io.fingerprint import fingerprint
from . import Store

if TYPE_CHECKING:
    from ..config.schema import Experiment

DATA_KEYS = ("segmentation_type", "crs", "resolution", "tilesize", "overlap", "nbands",
             "images", "scenes", "labels", "classes", "ignore_label", "padding", "tiler",
             "folds", "fold_by")


def settings_hash(exp: Experiment) -> str:
    """Hash of every setting and input file (its fingerprint: path, size, mtime, sampled
    content, deepseg_core.io.fingerprint) that changes the store's content."""
    from ..config import expand_paths

    data = exp.model_dump(mode="json", include=set(DATA_KEYS))
    sources = ([src for scene in exp.scenes for src in scene.images] if exp.scenes
               else exp.images or [])
    files = [fingerprint(p) for src in sources for p in expand_paths(src.path)]
    for labels in [exp.labels, *(scene.labels for scene in exp.scenes or [])]:
        if labels is not None:
            files += [fingerprint(p) for p in (labels.path, labels.raster) if p]
    data["files"] = files
    data["compression"] = exp.store.compression
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def store_path(exp: Experiment, digest: str | None = None) -> Path:
    """The configured store, or ``<workdir>/stores/<hash>.h5`` shared by matching experiments
    (``digest``: the settings hash when the caller has it already)."""
    if exp.store.path:
        return Path(exp.store.path)
    return Path(exp.workdir) / "stores" / f"{(digest or settings_hash(exp))[:16]}.h5"


def open_store(exp: Experiment) -> Store:
    """The experiment's store, checked against the experiment's data settings."""
    path = store_path(exp)
    if not path.exists():
        raise DeepSegError(f"store {path} not found (dataprep not run, or data settings "
                           "changed since): run 'deepseg dataprep' first")
    store = Store(path)
    attrs, problems = store.attrs, []
    for key, mine in (("segmentation_type", exp.segmentation_type), ("nbands", exp.nbands),
                      ("classes", exp.class_names), ("tilesize", exp.tilesize)):
        if attrs.get(key) != mine:
            problems.append(f"{key} {attrs.get(key)!r} in the store but {mine!r} in "
                            f"{exp.source}")
    if problems:
        store.close()
        raise DeepSegError(f"store {path} was built for other settings: " + "; ".join(problems))
    return store

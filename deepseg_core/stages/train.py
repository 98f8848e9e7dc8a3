"""Train: fit the configured model plugin on the HDF5 store, holding out validation folds."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config.resolved import save_resolved
from ..data.folds import split
from ..errors import DeepSegError, io_error
from ..store.identity import open_store

if TYPE_CHECKING:
    from ..config.schema import Experiment
    from ..contracts.model import KerasModel
    from ..plugins.registry import Registry
    from ..store.reader import Store

log = logging.getLogger(__name__)


def validation_folds(exp: Experiment) -> list[int]:
    """Held-out folds for validation: configured, else the last fold (none with 1 fold)."""
    if exp.training.validation_folds is not None:
        bad = [f for f in exp.training.validation_folds if not 0 <= f < exp.folds]
        if bad:
            raise DeepSegError(f"{exp.source}: training.validation_folds: {bad} not in "
                               f"0..{exp.folds - 1}")
        return exp.training.validation_folds
    return [exp.folds - 1] if exp.folds > 1 else []


def run(exp: Experiment, registry: Registry) -> KerasModel:
    """Train and return the trained keras model."""
    outdir = exp.outdir
    try:
        return _train(exp, registry, outdir)
    except OSError as exc:  # e.g. a folder that cannot be made; the callbacks name their files
        raise io_error(exc.filename or outdir, exc) from None


def _train(exp: Experiment, registry: Registry, outdir: Path) -> KerasModel:
    from ..training.fit import setup_runtime
    from ..training.runs import writing

    # one run at a time; without multiworker this process is the chief and locks the run
    # before TensorFlow starts, so a second run stops within a second
    with writing(outdir) if exp.training.distribute != "multiworker" else nullcontext():
        chief = setup_runtime(exp).chief  # the workers of a distributed run write nothing
        with writing(outdir, chief), open_store(exp) as store:
            model = _fit(exp, registry, store, outdir)
    log.info(f"model: {outdir / 'model'}  curves: {outdir / 'logs' / 'curves.png'}")
    return model


def _fit(exp: Experiment, registry: Registry, store: Store, outdir: Path) -> KerasModel:
    from ..training.fit import fit

    tiles = store.tiles
    held = validation_folds(exp)
    train_idx, val_idx = split(tiles["fold"], tiles["row"], tiles["col"], exp.tilesize, held)
    if not held:
        train_idx = np.arange(len(tiles))
    log.info(f"training {exp.model.name} on {len(train_idx)} tiles, validating on "
             f"{len(val_idx)} (folds {held or 'none'})")
    return fit(exp, registry, store, train_idx, val_idx, outdir,
               started=lambda: save_resolved(exp, outdir))  # once the run may start

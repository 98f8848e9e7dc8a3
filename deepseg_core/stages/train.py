"""Train: fit the configured model plugin on the HDF5 store, holding out validation folds."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import yaml

from ..atomic import io_error, write_text
from ..dataprep.stage import store_path
from ..errors import DeepSegError
from ..folds import split
from ..store import Store


def open_store(exp) -> Store:
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


def validation_folds(exp) -> list[int]:
    """Held-out folds for validation: configured, else the last fold (none with 1 fold)."""
    if exp.training.validation_folds is not None:
        bad = [f for f in exp.training.validation_folds if not 0 <= f < exp.folds]
        if bad:
            raise DeepSegError(f"{exp.source}: training.validation_folds: {bad} not in "
                               f"0..{exp.folds - 1}")
        return exp.training.validation_folds
    return [exp.folds - 1] if exp.folds > 1 else []


def save_resolved(exp, outdir: Path) -> None:
    """The resolved config actually used, as experiment.yaml in the experiment folder."""
    text = yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False)
    write_text(outdir / "experiment.yaml", f"# resolved from {exp.source}\n{text}")


def run(exp, registry, progress: bool = True):
    """Train and return the trained keras model."""
    outdir = exp.outdir
    try:
        return _train(exp, registry, outdir, progress)
    except OSError as exc:  # e.g. a folder that cannot be made; the callbacks name their files
        raise io_error(exc.filename or outdir, exc) from None


def _train(exp, registry, outdir: Path, progress: bool):
    from ..training import fit, setup_runtime

    if setup_runtime(exp).chief:  # the workers of a distributed run write nothing here
        save_resolved(exp, outdir)
    with open_store(exp) as store:
        tiles = store.tiles
        held = validation_folds(exp)
        train_idx, val_idx = split(tiles["fold"], tiles["row"], tiles["col"], exp.tilesize, held)
        if not held:
            train_idx = np.arange(len(tiles))
        click.echo(f"training {exp.model.name} on {len(train_idx)} tiles, validating on "
                   f"{len(val_idx)} (folds {held or 'none'})")
        model = fit(exp, registry, store, train_idx, val_idx, outdir, progress)
    click.echo(f"model: {outdir / 'model'}  curves: {outdir / 'logs' / 'curves.png'}")
    return model

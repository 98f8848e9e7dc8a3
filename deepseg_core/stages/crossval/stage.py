"""Crossval: train on k-1 spatial folds, predict the held-out fold's tile cores, report.

Each fold writes ``crossval/fold<k>/`` (model, logs, metric states and reports, error map);
every call then merges all finished folds into ``crossval/`` (all-fold reports and the
mean ± std table), so folds may run in separate jobs.

With ``training.distribute: multiworker`` crossval runs as the train stage does, one process
per worker in a Slurm step (``srun deepseg crossval``): every worker trains each fold, at the
train stage's global batch, and the chief alone evaluates it and writes every file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...config.resolved import save_resolved
from ...contracts.raster import Window
from ...data.folds import split
from ...data.scenes import store_scenes
from ...errors import DeepSegError, io_error
from ...geo.tiling import tile_cores
from ...inference.pipeline import Flow
from ...inference.stream import stream
from ...io.atomic import discard, write_text
from ...io.gdal_errors import gdal_errors
from ...metrics.summary import fold_statistics, fold_summary
from ...store.identity import open_store
from ...training.runs import writing
from .tile_eval import TileEvaluator

if TYPE_CHECKING:
    from ...config.schema import Experiment
    from ...contracts.model import KerasModel
    from ...plugins.registry import Registry
    from ...store.reader import Store

log = logging.getLogger(__name__)


def metric_names(exp: Experiment) -> list[str]:
    if exp.crossval.metrics:
        return exp.crossval.metrics
    return ["pycm"] if exp.segmentation_type == "semantic" else ["pycm", "instances"]


def chosen_folds(exp: Experiment, store: Store) -> list[int]:
    present = sorted({int(f) for f in store.tiles["fold"] if f >= 0})
    wanted = exp.crossval.folds if exp.crossval.folds is not None else present
    bad = [f for f in wanted if f not in present]
    if bad:
        raise DeepSegError(f"{exp.source}: crossval.folds: {bad} hold no tiles; the store has "
                           f"folds {present}")
    return list(wanted)


def run(exp: Experiment, registry: Registry) -> dict[str, dict[str, Any]]:
    """Run the chosen folds, then summarize every finished fold; returns the summary table."""
    root = exp.outdir / "crossval"
    try:
        with open_store(exp) as store:
            folds, chief = chosen_folds(exp, store), True
            if folds and exp.training.distribute == "multiworker":
                from ...training.fit import setup_runtime

                chief = setup_runtime(exp).chief  # the other workers help train the folds
            if chief:
                save_resolved(exp, exp.outdir)
            for fold in folds:
                log.info(f"== crossval fold {fold}")
                with writing(root / f"fold{fold}", chief):  # its one writer, training to reports
                    run_fold(exp, registry, store, fold, root / f"fold{fold}", chief)
        return summarize(exp, registry, root) if chief else {}
    except OSError as exc:  # a folder that cannot be made; the writers name their files
        raise io_error(exc.filename or root, exc) from None


def run_fold(exp: Experiment, registry: Registry, store: Store, fold: int,
             folder: Path, chief: bool = True) -> None:
    """Train without the fold, evaluate its tile cores, write its reports (the chief)."""
    from ...training.fit import fit
    from ...training.reuse import finished_run

    tiles = store.tiles
    train_idx, test_idx = split(tiles["fold"], tiles["row"], tiles["col"], exp.tilesize, [fold])
    plugin = registry.get("model", exp.model.name)
    last = finished_run(exp, exp.outdir, train_idx)  # every worker finds the same
    if last is not None:
        if not chief:
            return
        model = _take_train_run(exp, registry, last, folder, fold)
    else:
        model = fit(exp, registry, store, train_idx, [], folder)
        if exp.training.distribute == "multiworker":
            if not chief:
                return
            model = _committed_model(registry, exp, folder)
    grid = _grid_windows(exp, registry, store)
    metrics = {name: registry.get("metric", name)(exp.class_names, exp.ignore_label)
               for name in metric_names(exp)}
    evaluator = TileEvaluator(exp, registry, store, metrics, grid, folder, f"fold{fold}")
    # as predict would (one reader: the store's HDF5 handle is not shared between threads)
    flow = Flow(exp.predict.batch_size or exp.training.batch_size, exp.predict.queue_depth,
                jit_compile=exp.predict.jit_compile)
    windows = [Window(int(tiles["row"][i]), int(tiles["col"][i]), exp.tilesize, exp.tilesize)
               for i in test_idx]
    try:
        with gdal_errors(evaluator.path):  # the error map: GDAL reports a full disk only so
            try:
                stream(plugin, model, evaluator.read, windows, evaluator.consume, flow,
                       f"crossval fold {fold}")
            finally:
                evaluator.close()
    except DeepSegError:
        discard(evaluator.path)  # never a half-written error map beside the reports
        raise
    states = {name: m.state() for name, m in metrics.items()}
    write_text(folder / "metrics.json", json.dumps({"fold": fold, "states": states}))
    for name, metric in metrics.items():
        metric.write_report(folder, f"fold{fold}_{name}")


def _take_train_run(exp: Experiment, registry: Registry, last: Path, folder: Path,
                    fold: int) -> KerasModel:
    """The train stage's finished run as the fold's (training.reuse says when it is the same)."""
    from ...models.folder import load_model
    from ...training.aside import set_aside
    from ...training.reuse import take_run
    from ...training.runs import writing

    log.info(f"fold {fold}: the train stage's run ({last}) trained on this fold's training "
             "tiles with the same settings: taken for the fold, not trained again")
    with writing(folder):  # a fresh run of the fold's: its previous one is moved aside
        set_aside(folder)
        take_run(exp.outdir, last, folder)
    return load_model(registry, exp.model.name, folder / "model" / "last.keras")[1]


def _committed_model(registry: Registry, exp: Experiment, folder: Path) -> KerasModel:
    """The fold's final weights as a model of this process alone: the trained one lives in
    the workers' strategy, whose every prediction would wait for all workers."""
    from ...models.folder import load_model
    from ...training import checkpoint

    model_dir = folder / "model"
    record = checkpoint.read_state(model_dir)
    path = checkpoint.committed(model_dir, record, "last.keras") if record else None
    if path is None:
        raise DeepSegError(f"{model_dir}: no committed last.keras after the fold's training")
    return load_model(registry, exp.model.name, path)[1]


def _grid_windows(exp: Experiment, registry: Registry,
                  store: Store) -> dict[tuple[int, int], Window]:
    """The core of every tile of every scene, by (row, col) origin in the store's frame."""
    tiler, cores = registry.get("tiler", exp.tiler), {}
    for scene in store_scenes(store.attrs):
        width, height = scene["width"], scene["height"]
        drow, dcol = scene["row_off"], scene["col_off"]
        windows = tiler(width, height, exp.tilesize, exp.overlap)
        for w, core in zip(windows, tile_cores(windows, width, height)):
            cores[(w.row_off + drow, w.col_off + dcol)] = core.shift(drow, dcol)
    return cores


def summarize(exp: Experiment, registry: Registry, root: Path) -> dict[str, dict[str, Any]]:
    """Merge every finished fold: all-fold reports and the mean ± std table."""
    finished = sorted(root.glob("fold*/metrics.json"))
    if not finished:
        raise DeepSegError(f"no finished crossval folds in {root}")
    per_fold: dict[str, dict[str, float]] = {}
    states: dict[str, list[dict[str, Any]]] = {}
    for path in finished:
        record = json.loads(path.read_text())
        fold = f"fold{record['fold']}"
        per_fold[fold] = {}
        for name, state in record["states"].items():
            factory = registry.get("metric", name)
            per_fold[fold].update(factory.merge([state]).summary())
            states.setdefault(name, []).append(state)
    for name, group in states.items():
        registry.get("metric", name).merge(group).write_report(root, f"all_{name}")
    fold_summary(per_fold, root)
    table = fold_statistics(per_fold)
    keys = [k for k in ("overall_accuracy", "kappa", "mean_F1", "mean_IoU", "F1", "AP50")
            if k in table]
    log.info(f"crossval over {len(per_fold)} fold(s): " + ", ".join(
        f"{k} {table[k]['mean']:.4f} ± {table[k]['std']:.4f}" for k in keys))
    log.info(f"reports: {root}")
    return table


def error_counts_total(root: Path) -> np.ndarray | None:
    """Summed confusion counts of all finished folds (semantic), for callers and tests."""
    total = None
    for path in sorted(root.glob("fold*/metrics.json")):
        state = json.loads(path.read_text())["states"].get("pycm")
        if state:
            counts = np.asarray(state["counts"])
            total = counts if total is None else total + counts
    return total

"""The training routine shared by the train and crossval stages."""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..contracts.model import TrainSettings
from ..errors import DeepSegError
from ..io.messages import progress_shown

if TYPE_CHECKING:
    from ..config.schema import Experiment
    from ..contracts.model import KerasModel
    from ..plugins.registry import Registry
    from ..store.reader import Store
    from .cluster import Cluster
    from .dataset import Augmenter

log = logging.getLogger(__name__)
Indices = np.ndarray | Sequence[int]  # tile indices in the store


def setup_runtime(exp: Experiment) -> Cluster:
    """The backend (``backend``, else Keras' choice), then the distribution (first, before any
    other operation of the backend), then seed, determinism and mixed precision; returns the
    cluster (distribution and this worker's place)."""
    from ..backend import select
    from .distributed import backend_module, cluster_for

    select(exp.backend, exp.source)
    cluster = cluster_for(exp.training.distribute, exp.training.communication)
    import keras

    module = backend_module()
    keras.utils.set_random_seed(exp.training.seed)
    module.deterministic(exp.training.jit_compile is True)  # same seed -> same weights on CPU
    policy = precision_policy(exp.training.mixed_precision, module.accelerators())
    if policy is not None:
        keras.mixed_precision.set_global_policy(policy)
    return cluster


def precision_policy(setting: bool | str, accelerators: int) -> str | None:
    """The Keras policy of ``training.mixed_precision`` (None: leave it, float32): bfloat16
    wherever asked for, float16 (``true``) on GPUs only."""
    if setting is False:
        return None
    if setting == "bfloat16":
        return "mixed_bfloat16"
    if accelerators:
        return "mixed_float16"
    warnings.warn("mixed_precision: no GPU visible, training in float32 (mixed_precision: "
                  "bfloat16 runs on CPUs too)", stacklevel=3)
    return None


def scaling(exp: Experiment, cluster: Cluster) -> tuple[int, float, str]:
    """(global batch, learning rate, the log line saying so) for this cluster."""
    replicas, batch = cluster.replicas, exp.training.batch_size
    rate = exp.learning_rate * (replicas if exp.training.scale_learning_rate else 1)
    scaled = f" (x{replicas}, training.scale_learning_rate)" if rate != exp.learning_rate else ""
    where = (f"worker {cluster.worker} of {cluster.workers}, " if cluster.workers > 1 else "")
    return batch * replicas, rate, (
        f"training.distribute: {cluster.kind} ({where}{replicas} replica(s) in sync): global "
        f"batch {batch * replicas} = batch_size {batch} x {replicas} replica(s); learning "
        f"rate {rate:g}{scaled}")


def class_weights(exp: Experiment, store: Store) -> list[float] | None:
    """Configured weights, or inverse class frequency from the store ('auto')."""
    cw = exp.training.class_weights
    if cw is None:
        return None
    if cw == "auto":
        counts = store.class_counts().astype(float)
        present = counts > 0
        weights = np.zeros_like(counts)
        weights[present] = counts[present].sum() / (present.sum() * counts[present])
        return weights.tolist()
    if len(cw) != len(exp.classes):
        raise DeepSegError(f"{exp.source}: training.class_weights has {len(cw)} values for "
                           f"{len(exp.classes)} classes")
    return list(cw)


def augmenters(exp: Experiment, registry: Registry) -> list[Augmenter]:
    """The experiment's augmenters, in order."""
    return [registry.get("augmenter", a.name)(**a.params) for a in exp.augmentation]


def fit(exp: Experiment, registry: Registry, store: Store, train_idx: Indices,
        val_idx: Indices, outdir: Path, started: Callable[[], None] | None = None) -> KerasModel:
    """Train the experiment's model on ``train_idx`` tiles; checkpoints and logs in ``outdir``.

    Only the chief (the one process of an undistributed run) writes into ``outdir``, holding
    its lock for the whole run; ``training.resume`` decides what the run starts from (runs.py).
    The chief calls ``started`` once that is decided, before the run writes its first file
    (a refused resume writes nothing).
    """
    from .runs import writing

    if len(train_idx) == 0:
        raise DeepSegError(f"{exp.source}: no training tiles left after holding out the "
                           "validation folds")
    cluster = setup_runtime(exp)
    with writing(outdir, cluster.chief):
        return _fit(exp, registry, store, (train_idx, val_idx), outdir, cluster, started)


def _fit(exp: Experiment, registry: Registry, store: Store, tiles: tuple[Indices, Indices],
         outdir: Path, cluster: Cluster, started: Callable[[], None] | None) -> KerasModel:
    from ..backend import set_jit
    from . import checkpoint
    from .callbacks import callbacks_for, load_resume_state
    from .dataset import EpochSetter, Feed, StoreDataset
    from .distributed import fit_input, lost_peer
    from .reuse import key_of, run_settings
    from .runs import name_run, start
    from .safe_callbacks import guard
    from .schedule import schedule_for

    plugin = registry.get("model", exp.model.name)
    model_dir, log_dir = outdir / "model", outdir / "logs"
    (train_idx, val_idx), settings = tiles, run_settings(exp, tiles[0])
    batch, rate, line = scaling(exp, cluster)
    log.info(line)
    record = start(exp, outdir, settings, cluster.chief)  # before anything is written
    if cluster.chief:
        if started is not None:
            started()
        model_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
    feed = Feed(plugin, batch, exp.model.params, exp.ignore_label)
    train = StoreDataset(store.path, train_idx, dataclasses.replace(
        feed, augmenters=tuple(augmenters(exp, registry)), seed=exp.training.seed),
        shuffle=True, workers=exp.training.workers, steps=exp.training.steps_per_epoch)
    val = StoreDataset(store.path, val_idx, feed) if len(val_idx) else None
    with cluster.scope():
        if record is not None:
            model, record = load_resume_state(model_dir, plugin, cluster.chief, record)
        else:
            model = plugin.build(exp.nbands, len(exp.classes), exp.tilesize, exp.model.params)
            plugin.compile(model, TrainSettings(
                nclasses=len(exp.classes), learning_rate=rate,
                loss=exp.training.loss, class_weights=class_weights(exp, store),
                ignore_label=exp.ignore_label))
    identity = {"run": key_of(settings), "settings": settings}
    if cluster.chief:  # model.json (and a continued record) name this run before its epochs
        record = name_run(exp, store, model_dir, record, identity)
    identity.update({"earlier": record["earlier"]} if record and "earlier" in record else {})
    initial_epoch = int(record["epoch"]) if record else 0
    if initial_epoch >= exp.epochs or (record or {}).get("stopped"):
        log.info(f"training: the run in {model_dir} has finished ({initial_epoch} epochs); "
                 "nothing to train")
        if cluster.chief:
            checkpoint.roll_forward(model_dir, record)
        return model
    set_jit(model, exp.training.jit_compile)
    train.epoch = initial_epoch
    x, vx, steps = fit_input(cluster, model, train, val, initial_epoch)
    callbacks = guard([EpochSetter(train, val), *schedule_for(exp, rate, train.steps),
                       *callbacks_for(exp, model_dir, log_dir, has_val=val is not None,
                                      chief=cluster.chief, record=record, identity=identity)])
    verbose = (1 if os.isatty(2) else 2) if progress_shown() and cluster.chief else 0
    try:  # shuffle=False: the dataset shuffles, by seed and epoch (Python's random would not)
        model.fit(x, validation_data=vx, epochs=exp.epochs, initial_epoch=initial_epoch,
                  shuffle=False, callbacks=callbacks, verbose=verbose, **steps)
    except Exception as exc:
        if cluster.workers > 1 and lost_peer(exc):
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise DeepSegError(f"training: worker {cluster.worker} of {cluster.workers} lost "
                               f"the cluster ({type(exc).__name__}: {reason}); rerun the job "
                               "with training.resume: true") from None
        raise
    finally:
        train.close()  # the loader processes of a distributed input (training.workers)
    return model

"""The training routine shared by the train and crossval stages."""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..contracts.model import TrainSettings
from ..errors import DeepSegError
from ..io.messages import progress_shown

if TYPE_CHECKING:
    from ..config.schema import Experiment
    from ..contracts.model import KerasModel
    from ..plugins.registry import Registry
    from ..store.reader import Store
    from .dataset import Augmenter
    from .distributed import Cluster

log = logging.getLogger(__name__)
Indices = np.ndarray | Sequence[int]  # tile indices in the store


def setup_runtime(exp: Experiment) -> Cluster:
    """The distribution strategy (first, before any other TensorFlow operation), then seed,
    determinism and mixed precision; returns the cluster (strategy and this worker's place)."""
    from .distributed import cluster_for

    cluster = cluster_for(exp.training.distribute)
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    keras.utils.set_random_seed(exp.training.seed)
    if not gpus:  # same seed -> same weights on CPU
        tf.config.experimental.enable_op_determinism()
    if exp.training.mixed_precision:
        if gpus:
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            warnings.warn("mixed_precision: no GPU visible, training in float32", stacklevel=2)
    return cluster


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
    from . import checkpoint
    from .callbacks import callbacks_for, load_resume_state
    from .dataset import EpochSetter, Feed, StoreDataset
    from .distributed import distributed_input
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
    with cluster.strategy.scope():
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
    x: Any = train
    vx: Any = val
    steps: dict[str, Any] = {}
    train.epoch = initial_epoch
    if cluster.replicas > 1 or cluster.workers > 1:  # each worker reads its own share
        build_before_fit(model, cluster, train.batch(initial_epoch, 0, 0, cluster.replicas))
        x = distributed_input(cluster, train, initial_epoch)
        vx = distributed_input(cluster, val, 0) if val is not None else None
        steps = dict(steps_per_epoch=train.steps,
                     validation_steps=val.steps if val is not None else None)
    callbacks = guard([EpochSetter(train, val), *schedule_for(exp, rate, train.steps),
                       *callbacks_for(exp, model_dir, log_dir, has_val=val is not None,
                                      chief=cluster.chief, record=record, identity=identity)])
    verbose = (1 if os.isatty(2) else 2) if progress_shown() and cluster.chief else 0
    try:  # shuffle=False: the dataset shuffles, by seed and epoch (Python's random would not)
        model.fit(x, validation_data=vx, epochs=exp.epochs, initial_epoch=initial_epoch,
                  shuffle=False, callbacks=callbacks, verbose=verbose, **steps)
    except Exception as exc:
        if cluster.workers > 1 and type(exc).__module__.startswith("tensorflow"):
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise DeepSegError(f"training: worker {cluster.worker} of {cluster.workers} lost "
                               f"the cluster ({type(exc).__name__}: {reason}); rerun the job "
                               "with training.resume: true") from None
        raise
    return model


def build_before_fit(model: KerasModel, cluster: Cluster, batch: tuple[Any, Any]) -> None:
    """Build the model's optimizer, loss and metrics from one replica's batch.

    Keras 3 builds them in ``fit`` from a batch of the distributed input, reduced with
    ``strategy.reduce``, which MultiWorkerMirroredStrategy cannot do for an (x, y) tuple
    ("Attempt to convert a value (PerReplica...)"); built here, that step has nothing to do.
    """
    with cluster.strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

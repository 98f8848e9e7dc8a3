"""The training routine shared by the train and crossval stages."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from .atomic import write_text
from .contracts.model import TrainSettings
from .errors import DeepSegError


def setup_runtime(exp):
    """Seed, determinism, mixed precision and distribution strategy; returns a strategy."""
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
    if exp.training.distribute:
        return tf.distribute.MirroredStrategy()  # one device on a CPU-only machine
    return tf.distribute.get_strategy()


def class_weights(exp, store) -> list[float] | None:
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


def augmenters(exp, registry):
    return [registry.get("augmenter", a.name)(**a.params) for a in exp.augmentation]


def fit(exp, registry, store, train_idx, val_idx, outdir: Path, progress: bool = True):
    """Train the experiment's model on ``train_idx`` tiles; checkpoints and logs in ``outdir``."""

    from .callbacks import callbacks_for, load_resume_state
    from .dataset import StoreDataset
    from .safe_callbacks import guard

    plugin = registry.get("model", exp.model.name)
    model_dir, log_dir = outdir / "model", outdir / "logs"
    model_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    if len(train_idx) == 0:
        raise DeepSegError(f"{exp.source}: no training tiles left after holding out the "
                           "validation folds")
    strategy = setup_runtime(exp)
    common = dict(model_plugin=plugin, ignore_label=exp.ignore_label,
                  batch_size=exp.training.batch_size, model_params=exp.model.params)
    train = StoreDataset(store.path, train_idx, augmenters=augmenters(exp, registry),
                         shuffle=True, seed=exp.training.seed, workers=exp.training.workers,
                         **common)
    val = StoreDataset(store.path, val_idx, **common) if len(val_idx) else None
    initial_epoch = 0
    with strategy.scope():
        if exp.training.resume:
            model, initial_epoch = load_resume_state(model_dir, plugin)
            train.epoch = initial_epoch
            train.order = train._order()
        else:
            model = plugin.build(exp.nbands, len(exp.classes), exp.tilesize, exp.model.params)
            plugin.compile(model, TrainSettings(
                nclasses=len(exp.classes), learning_rate=exp.learning_rate,
                loss=exp.training.loss, class_weights=class_weights(exp, store),
                ignore_label=exp.ignore_label))
    if initial_epoch >= exp.epochs:
        return model
    write_model_info(exp, store, model_dir)
    steps = exp.training.steps_per_epoch
    model.fit(train, validation_data=val, epochs=exp.epochs, initial_epoch=initial_epoch,
              steps_per_epoch=min(steps, len(train)) if steps else None,
              callbacks=guard(callbacks_for(exp, model_dir, log_dir, has_val=val is not None)),
              verbose=1 if progress and os.isatty(2) else 2 if progress else 0)
    return model


def write_model_info(exp, store, model_dir: Path) -> None:
    """model.json: what predict needs besides the weights (normalization, bands, classes)."""
    info = model_info(exp, store.stats(), store.attrs["band_names"], store.attrs["crs"],
                      abs(store.attrs["transform"][1]))
    write_text(model_dir / "model.json", json.dumps(info, indent=1))


def model_info(exp, stats: dict, band_names, crs, resolution) -> dict:
    """The content of model.json for a model of ``exp`` trained on data with ``stats``."""
    from .contracts.raster import parse_colour

    return {"model": exp.model.name, "params": exp.model.params, "nbands": exp.nbands,
            "tilesize": exp.tilesize, "overlap": exp.overlap,
            "segmentation_type": exp.segmentation_type, "classes": exp.class_names,
            "colours": [list(parse_colour(c.color)) for c in exp.classes],
            "band_names": list(band_names), "crs": crs, "resolution": resolution,
            "stats": {k: np.asarray(v).tolist() for k, v in stats.items()}}

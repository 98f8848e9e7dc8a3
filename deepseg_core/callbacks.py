"""Keras callbacks of a training run: checkpoints, resume state, logs and the curves PNG.

A run writes a bounded set of files whatever its epoch count: best.keras, last.keras and
state.json in model/; training.csv, curves.png and TensorBoard events in logs/.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from .curves import plot_curves
from .errors import DeepSegError


class CurvesCallback(keras.callbacks.Callback):
    """Redraws logs/curves.png after every epoch (CSVLogger has written the row by then)."""

    def __init__(self, csv_path: Path, png_path: Path):
        super().__init__()
        self.csv_path, self.png_path = csv_path, png_path

    def on_epoch_end(self, epoch, logs=None):
        if self.csv_path.exists():
            plot_curves(self.csv_path, self.png_path)


class StateCallback(keras.callbacks.Callback):
    """Records the finished epoch count beside last.keras, for ``resume: true``."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epoch": epoch + 1,
                                   "iterations": int(keras.ops.convert_to_numpy(
                                       self.model.optimizer.iterations))}))
        tmp.replace(self.path)


def monitor_for(exp, has_val: bool) -> tuple[str, str]:
    """The metric that picks the best checkpoint, and whether higher is better."""
    monitor = exp.training.monitor
    if exp.segmentation_type == "instance" and monitor.endswith("miou"):
        monitor = "val_loss"
    if not has_val:
        monitor = monitor.removeprefix("val_")
    return monitor, ("min" if "loss" in monitor else "max")


def callbacks_for(exp, model_dir: Path, log_dir: Path, has_val: bool) -> list:
    """Every callback of a run, in the order they must fire."""
    monitor, mode = monitor_for(exp, has_val)
    csv_path = log_dir / "training.csv"
    cbs = [
        keras.callbacks.CSVLogger(str(csv_path), append=exp.training.resume),
        CurvesCallback(csv_path, log_dir / "curves.png"),
        keras.callbacks.TensorBoard(str(log_dir / "tensorboard"), write_graph=False,
                                    profile_batch=0),
        keras.callbacks.ModelCheckpoint(str(model_dir / "best.keras"), monitor=monitor,
                                        mode=mode, save_best_only=True),
        keras.callbacks.ModelCheckpoint(str(model_dir / "last.keras")),
        StateCallback(model_dir / "state.json"),
    ]
    if exp.training.early_stopping:
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                                 patience=exp.training.early_stopping))
    if exp.training.reduce_lr:
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5,
                                                     patience=exp.training.reduce_lr))
    return cbs


def load_resume_state(model_dir: Path, plugin):
    """(model with optimizer state, finished epochs) from the last checkpoint."""
    last, state = model_dir / "last.keras", model_dir / "state.json"
    if not last.exists() or not state.exists():
        raise DeepSegError(f"training.resume: no checkpoint to resume from in {model_dir} "
                           "(train once without resume first)")
    model = keras.saving.load_model(last, custom_objects=plugin.custom_objects())
    return model, int(json.loads(state.read_text())["epoch"])

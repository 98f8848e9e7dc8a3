"""Keras callbacks of a training run: checkpoints, resume state, logs and the curves PNG.

A run writes a bounded set of files whatever its epoch count: best.keras, last.keras and
state.json in model/; training.csv, curves.png and TensorBoard events in logs/. In a
multi-worker run only the chief writes them; the other workers save their checkpoints
(which every worker must do, the save reads synchronized variables) to a temporary folder
that is deleted at once. checkpoint.py describes the commit protocol.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from ..errors import DeepSegError
from ..io.fingerprint import content_hash
from ..models.folder import load_saved
from . import checkpoint
from .curves import plot_curves
from .heap import keep_blocks_in_heap
from .tensorboard import tensorboard_callback

if TYPE_CHECKING:
    from ..config.schema import Experiment
    from ..contracts.model import KerasModel, ModelPlugin

Logs = dict[str, Any] | None  # what Keras passes its callbacks' hooks

#: counters of Keras callbacks that a resumed run must continue from
COUNTERS = ("wait", "best", "stopped_epoch", "best_epoch", "cooldown_counter")


class CurvesCallback(keras.callbacks.Callback):
    """Redraws logs/curves.png after every epoch (CSVLogger has written the row by then)."""

    def __init__(self, csv_path: Path, png_path: Path) -> None:
        super().__init__()
        self.csv_path, self.png_path = csv_path, png_path

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if self.csv_path.exists():
            try:  # plot_curves writes a temporary PNG and renames it: never half a PNG
                plot_curves(self.csv_path, self.png_path)
            except OSError as exc:
                self.png_path.with_name(self.png_path.stem + ".tmp.png").unlink(missing_ok=True)
                raise cannot_write(self.png_path, exc, epoch) from None


class HeapSettings(keras.callbacks.Callback):
    """glibc's thresholds set at each epoch's first step, after TensorFlow's generator
    dataset has lowered them (deepseg_core.training.heap says why)."""

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        if batch == 0:
            keep_blocks_in_heap()


class CSVLog(keras.callbacks.CSVLogger):
    """Keras' CSVLogger, whose write failures name the log file."""

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        try:
            super().on_epoch_end(epoch, logs)
        except OSError as exc:
            raise cannot_write(Path(self.filename), exc, epoch) from None


def cannot_write(path: Path, exc: Exception, epoch: int) -> DeepSegError:
    """The one-line error of a training output that could not be written."""
    reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
    return DeepSegError(f"{path}: cannot write after epoch {epoch} ({reason}); "
                        "free space and rerun with training.resume: auto (it continues after "
                        "the last committed epoch)")


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class Checkpoints(keras.callbacks.Callback):
    """last.keras every epoch, best.keras when ``monitor`` improves, committed by state.json."""

    def __init__(self, model_dir: Path, monitor: str, mode: str, csv_path: Path | None,
                 chief: bool, others: list[Any], record: dict[str, Any] | None = None,
                 identity: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model_dir, self.monitor, self.mode = model_dir, monitor, mode
        self.identity = identity or {}  # the run's key and settings, in every record
        self.csv_path, self.chief, self.others = csv_path, chief, others
        self.record, self._rolled = record, record is None
        self.best = (record or {}).get("best", math.inf if mode == "min" else -math.inf)

    def on_train_begin(self, logs: Logs = None) -> None:
        # after the others' on_train_begin (they come first in the list): their counters
        for cb in self.others:
            for key, value in (self.record or {}).get("callbacks", {}).get(
                    type(cb).__name__, {}).items():
                setattr(cb, key, value)

    def _improved(self, value: float | None) -> bool:
        if value is None:
            return False
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        value = _number((logs or {}).get(self.monitor))
        improved = self._improved(value)
        folder = self.model_dir if self.chief else Path(self._scratch())
        try:
            if self.chief and not self._rolled:  # a record read from disk: finish it
                checkpoint.roll_forward(self.model_dir, self.record)
                self._rolled = True
            last = checkpoint.pending(folder / "last.keras")
            self.model.save(last)
            checkpoint.fsync_path(last)
            files = {"last.keras": last}
            if improved:
                best = checkpoint.pending(folder / "best.keras")
                shutil.copyfile(last, best)
                checkpoint.fsync_path(best)
                files["best.keras"] = best
                self.best = value
            if self.chief:
                self._commit(epoch, files)
        except (OSError, RuntimeError) as exc:  # h5py inside the .keras raises either
            for name in checkpoint.FILES:  # uncommitted: nothing may look like a checkpoint
                checkpoint.pending(folder / name).unlink(missing_ok=True)
            raise cannot_write(folder / "last.keras", exc, epoch) from None
        finally:
            if not self.chief:
                shutil.rmtree(folder, ignore_errors=True)

    def _scratch(self) -> str:
        import tempfile

        return tempfile.mkdtemp(prefix="deepseg-worker-")

    def _commit(self, epoch: int, files: dict[str, Path]) -> None:
        old = (self.record or {}).get("files", {})
        hashes = {name: content_hash(path) for name, path in files.items()}
        if self.csv_path is not None and self.csv_path.exists():
            checkpoint.fsync_path(self.csv_path)
        counters = {type(cb).__name__: {k: _number(getattr(cb, k)) for k in COUNTERS
                                        if hasattr(cb, k)} for cb in self.others}
        self.record = {
            "epoch": epoch + 1,
            "iterations": int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)),
            "stopped": bool(self.model.stop_training),
            "best": self.best, "monitor": self.monitor,
            "files": {**old, **hashes},
            "csv_bytes": (self.csv_path.stat().st_size if self.csv_path is not None
                          and self.csv_path.exists() else 0),
            "callbacks": counters, **self.identity}
        checkpoint.commit(self.model_dir, self.record, files)


def monitor_for(exp: Experiment, has_val: bool) -> tuple[str, str]:
    """The metric that picks the best checkpoint, and whether higher is better."""
    monitor = exp.training.monitor
    if exp.segmentation_type == "instance" and monitor.endswith("miou"):
        monitor = "val_loss"
    if not has_val:
        monitor = monitor.removeprefix("val_")
    return monitor, ("min" if "loss" in monitor else "max")


def callbacks_for(exp: Experiment, model_dir: Path, log_dir: Path, has_val: bool,
                  chief: bool = True, record: dict[str, Any] | None = None,
                  identity: dict[str, Any] | None = None) -> list[Any]:
    """Every callback of a run, in the order they must fire (the checkpoint last);
    ``identity``: the run key and settings that every checkpoint record carries."""
    monitor, mode = monitor_for(exp, has_val)
    csv_path = log_dir / "training.csv"
    others: list[Any] = []
    if exp.training.early_stopping:
        others.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                                    patience=exp.training.early_stopping))
    if exp.training.reduce_lr:
        others.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5,
                                                        patience=exp.training.reduce_lr))
    logs: list[Any] = []
    if chief:
        logs = [CSVLog(str(csv_path), append=record is not None),
                CurvesCallback(csv_path, log_dir / "curves.png"),
                *tensorboard_callback(log_dir / "tensorboard")]
    checkpoints = Checkpoints(model_dir, monitor, mode, csv_path if chief else None, chief,
                              others, record, identity)
    return [HeapSettings(), *logs, *others, checkpoints]


def load_resume_state(model_dir: Path, plugin: ModelPlugin, chief: bool = True,
                      record: dict[str, Any] | None = None) -> tuple[KerasModel, dict[str, Any]]:
    """(model with optimizer state, committed record) from the last committed checkpoint
    (``record``, else the folder's)."""
    record = record or checkpoint.read_state(model_dir)
    last = checkpoint.committed(model_dir, record, "last.keras") if record else None
    if record is None or last is None:
        raise DeepSegError(f"training.resume: no checkpoint to resume from in {model_dir} "
                           "(train once without resume first)")
    try:
        model = load_saved(plugin, last, compile=True)
    except (OSError, ValueError) as exc:
        raise DeepSegError(f"{last}: cannot load the checkpoint ({exc})") from None
    if chief:  # the log ends where the committed epochs end
        csv = model_dir.parent / "logs" / "training.csv"
        if csv.exists() and "csv_bytes" in record and csv.stat().st_size > record["csv_bytes"]:
            with open(csv, "r+b") as handle:
                handle.truncate(record["csv_bytes"])
    return model, record

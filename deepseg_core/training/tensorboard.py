"""TensorBoard events of a run on a backend without TensorFlow (JAX).

Keras' TensorBoard callback writes through ``tf.summary``, so it needs TensorFlow. Here the
epoch logs are written by the ``tensorboard`` package alone (which needs no TensorFlow), in
Keras' layout -- ``logs/tensorboard/train`` and ``.../validation``, tags ``epoch_loss``,
``epoch_miou``, ... -- so TensorBoard shows the runs of either backend alike. Without the
``tensorboard`` package the run says so once and writes no events.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras

log = logging.getLogger(__name__)


class EpochScalars(keras.callbacks.Callback):
    """Every number of the epoch logs as a scalar event (``val_`` ones under validation/)."""

    def __init__(self, log_dir: str) -> None:
        super().__init__()
        self.log_dir = log_dir
        self._writers: dict[str, Any] = {}

    def _writer(self, which: str) -> Any:
        if which not in self._writers:
            from tensorboard.summary import Writer

            self._writers[which] = Writer(str(Path(self.log_dir) / which))
        return self._writers[which]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for key, value in (logs or {}).items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            which, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._writer(which).add_scalar(f"epoch_{tag}", number, step=epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def tensorboard_callback(log_dir: Path) -> list[Any]:
    """The run's TensorBoard callback for the backend in use (none without the package)."""
    if keras.backend.backend() == "tensorflow":
        return [keras.callbacks.TensorBoard(str(log_dir), write_graph=False, profile_batch=0)]
    try:
        import tensorboard.summary  # noqa: F401
    except ImportError:
        log.info("training: no TensorBoard events (pip install tensorboard to have them); "
                 "logs/training.csv and curves.png hold the same figures")
        return []
    return [EpochScalars(str(log_dir))]

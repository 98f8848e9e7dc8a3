"""The learning-rate schedule: warm-up, then constant or a half cosine, set before every step.

The rate is a function of (epoch, step) alone, so a resumed run continues the very schedule of
an uninterrupted one, and every worker of a distributed run sets the same rate.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import keras

if TYPE_CHECKING:
    from ..config.schema import Experiment

COSINE_FLOOR = 0.02  # the cosine ends at this fraction of learning_rate


def rate_at(step: int, rate: float, schedule: str, warmup: int, total: int) -> float:
    """The learning rate of global step ``step`` (0-based) of ``total``."""
    if step < warmup:
        return rate * (step + 1) / warmup
    if schedule == "constant":
        return rate
    progress = min((step - warmup) / max(total - warmup - 1, 1), 1.0)  # 1 at the last step
    return rate * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


class LearningRateSchedule(keras.callbacks.Callback):
    """Sets the optimizer's rate before each training step and logs it at each epoch's end
    (training.csv's ``learning_rate``). With the constant schedule it stops after the
    warm-up, leaving the rate to ReduceLROnPlateau."""

    def __init__(self, rate: float, schedule: str, warmup_epochs: float, epochs: int,
                 steps: int) -> None:
        super().__init__()
        self.rate, self.schedule, self.steps = rate, schedule, steps
        self.warmup = round(warmup_epochs * steps)
        self.total, self.epoch = epochs * steps, 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self.epoch * self.steps + batch
        if self.schedule == "constant" and step >= self.warmup:
            return
        self.model.optimizer.learning_rate.assign(
            rate_at(step, self.rate, self.schedule, self.warmup, self.total))


def schedule_for(exp: Experiment, rate: float, steps: int) -> list[LearningRateSchedule]:
    """The schedule callback of ``exp`` (none for a constant rate without warm-up)."""
    t = exp.training
    if t.lr_schedule == "constant" and not t.warmup_epochs:
        return []
    return [LearningRateSchedule(rate, t.lr_schedule, t.warmup_epochs, exp.epochs, steps)]

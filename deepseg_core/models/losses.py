"""Semantic losses and metrics with an ignore label, in keras.ops (backend-neutral).

Imported only by code that already needs Keras.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

Tensor = Any  # a backend tensor (keras.ops)


def _valid_and_onehot(y_true: Tensor, nclasses: int,
                      ignore_label: int | None) -> tuple[Tensor, Tensor, Tensor]:
    labels = ops.cast(ops.reshape(y_true, ops.shape(y_true)[:3]), "int32")
    if ignore_label is None:
        valid = ops.ones_like(labels, dtype="float32")
    else:
        valid = ops.cast(ops.not_equal(labels, ignore_label), "float32")
    safe = ops.where(ops.equal(valid, 1.0), labels, ops.zeros_like(labels))
    return valid, ops.one_hot(safe, nclasses), safe


@keras.saving.register_keras_serializable(package="deepseg")
class SegmentationLoss(keras.losses.Loss):
    """Cross-entropy, soft Dice, or their sum over pixels whose label is not ``ignore_label``."""

    def __init__(self, nclasses: int, kind: str = "ce+dice",
                 class_weights: Sequence[float] | None = None, ignore_label: int | None = None,
                 name: str = "segmentation_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        if kind not in ("ce", "dice", "ce+dice"):
            raise ValueError(f"loss {kind!r} is not one of ce, dice, ce+dice")
        self.nclasses, self.kind = int(nclasses), kind
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.ignore_label = ignore_label

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_pred = ops.cast(y_pred, "float32")
        valid, onehot, safe = _valid_and_onehot(y_true, self.nclasses, self.ignore_label)
        total = ops.maximum(ops.sum(valid), 1.0)
        loss: Tensor = 0.0
        if "ce" in self.kind.split("+"):
            probs = ops.clip(y_pred, 1e-7, 1.0)
            ce = -ops.sum(onehot * ops.log(probs), axis=-1)
            if self.class_weights is not None:
                ce = ce * ops.take(ops.convert_to_tensor(self.class_weights, "float32"), safe)
            loss = loss + ops.sum(ce * valid) / total
        if "dice" in self.kind.split("+"):
            mask = ops.expand_dims(valid, -1)
            inter = ops.sum(onehot * y_pred * mask, axis=(0, 1, 2))
            denom = ops.sum((onehot + y_pred) * mask, axis=(0, 1, 2))
            dice = (2.0 * inter + 1.0) / (denom + 1.0)
            loss = loss + 1.0 - ops.mean(dice)
        # one value per batch: broadcast so keras' reduction returns it unchanged
        return ops.ones(ops.shape(y_true)[:1]) * loss

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "nclasses": self.nclasses, "kind": self.kind,
                "class_weights": self.class_weights, "ignore_label": self.ignore_label}


@keras.saving.register_keras_serializable(package="deepseg")
class ConfusionMetric(keras.metrics.Metric):
    """Accumulated confusion counts; reports overall accuracy or mean IoU, ignoring a label."""

    def __init__(self, nclasses: int, statistic: str = "accuracy", ignore_label: int | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or statistic, **kwargs)
        self.nclasses, self.statistic, self.ignore_label = int(nclasses), statistic, ignore_label
        self.counts = self.add_variable(shape=(self.nclasses, self.nclasses), initializer="zeros",
                                        name="counts", dtype="float32")

    def update_state(self, y_true: Tensor, y_pred: Tensor,
                     sample_weight: Tensor | None = None) -> None:
        valid, onehot, _ = _valid_and_onehot(y_true, self.nclasses, self.ignore_label)
        truth = ops.reshape(onehot * ops.expand_dims(valid, -1), (-1, self.nclasses))
        pred = ops.one_hot(ops.argmax(y_pred, axis=-1), self.nclasses)
        pred = ops.reshape(pred, (-1, self.nclasses))
        # a matrix product, not a scatter: deterministic on every device
        self.counts.assign_add(ops.matmul(ops.transpose(truth), pred))

    def result(self) -> Tensor:
        diag = ops.diagonal(self.counts)
        if self.statistic == "accuracy":
            return ops.sum(diag) / ops.maximum(ops.sum(self.counts), 1.0)
        union = ops.sum(self.counts, axis=0) + ops.sum(self.counts, axis=1) - diag
        present = ops.cast(union > 0, "float32")
        iou = diag / ops.maximum(union, 1.0)
        return ops.sum(iou * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self) -> None:
        self.counts.assign(ops.zeros(self.counts.shape, dtype=self.counts.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "nclasses": self.nclasses, "statistic": self.statistic,
                "ignore_label": self.ignore_label}


def masked_metrics(nclasses: int, ignore_label: int | None) -> list[ConfusionMetric]:
    """Overall accuracy and mean IoU, both excluding ``ignore_label``."""
    return [ConfusionMetric(nclasses, "accuracy", ignore_label, name="accuracy"),
            ConfusionMetric(nclasses, "miou", ignore_label, name="miou")]


def custom_objects() -> dict[str, type]:
    """What Keras needs to load a model compiled with these losses and metrics."""
    return {"SegmentationLoss": SegmentationLoss, "ConfusionMetric": ConfusionMetric}

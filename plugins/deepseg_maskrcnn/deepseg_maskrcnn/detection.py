"""Detection layer: refine the proposals per class, then per-class non-maximum suppression."""

from __future__ import annotations

import math

import keras
from keras import ops

from . import boxes as bx
from .nms import first_kept, native_nms, suppress


@keras.saving.register_keras_serializable(package="deepseg_maskrcnn")
class DetectionLayer(keras.layers.Layer):
    """``(rois (B, R, 4), probs (B, R, K), deltas (B, R, K, 4))`` -> the kept detections.

    Returns boxes ``(B, D, 4)`` (normalized), scores ``(B, D)``, class ids ``(B, D)`` (0 for
    padding) and the count ``(B,)`` of detections per tile, best first; ``D = max_instances``.
    Each object class keeps its boxes scoring at least ``min_confidence`` after NMS at
    ``nms_threshold``.
    """

    def __init__(self, max_instances: int, min_confidence: float, nms_threshold: float,
                 **kwargs):
        super().__init__(**kwargs)
        self.max_instances, self.min_confidence = max_instances, min_confidence
        self.nms_threshold = nms_threshold
        self.built = True

    def candidates(self, rois: int, classes: int) -> int:
        """How many (ROI, class) pairs can pass: the probabilities of a ROI sum to 1, so at
        most ``1 / min_confidence`` of its classes reach the threshold."""
        threshold = self.min_confidence - 1e-6
        per_roi = classes if threshold <= 0 else min(classes, math.floor(1.0 / threshold))
        return rois * per_roi

    def call(self, rois, probs, deltas):
        """(boxes, scores, class_ids, count) of the kept detections."""
        rois = ops.cast(rois, "float32")
        nrois, nclasses = rois.shape[1], probs.shape[-1] - 1
        boxes = bx.clip(bx.decode(ops.cast(deltas, "float32")[:, :, 1:],
                                  ops.expand_dims(rois, 2)))
        real = ops.cast(bx.area(rois) > 0, "float32")  # zero boxes pad the proposals
        scores = ops.cast(probs, "float32")[:, :, 1:] * ops.expand_dims(real, -1)
        if native_nms():  # scores equal to the threshold pass (the op keeps those above it)
            from .nms_tf import detections

            return detections(boxes, scores, self.max_instances, self.nms_threshold,
                              self.min_confidence - 1e-6)
        scores = ops.reshape(scores, (-1, nrois * nclasses))
        boxes = ops.reshape(boxes, (-1, nrois * nclasses, 4))
        top, index = ops.top_k(scores, k=self.candidates(nrois, nclasses))
        classes = index % nclasses
        # Scores equal to the threshold pass.
        kept = suppress(bx.batch_gather(boxes, index), top > self.min_confidence - 1e-6,
                        self.nms_threshold, classes)
        slot, filled = first_kept(kept, self.max_instances)
        index = bx.batch_gather(index, slot)
        fill = ops.cast(filled, "float32")
        kept_boxes = bx.batch_gather(boxes, index) * ops.expand_dims(fill, -1)
        class_ids = ops.where(filled, bx.batch_gather(classes, slot) + 1, 0)
        count = ops.sum(ops.cast(filled, "int32"), axis=1)
        return kept_boxes, bx.batch_gather(top, slot) * fill, class_ids, count

    def compute_output_shape(self, rois_shape, probs_shape=None, deltas_shape=None):
        batch, d = rois_shape[0], self.max_instances
        return (batch, d, 4), (batch, d), (batch, d), (batch,)

    def get_config(self):
        return {**super().get_config(), "max_instances": self.max_instances,
                "min_confidence": self.min_confidence, "nms_threshold": self.nms_threshold}

"""Detection layer: refine the proposals per class, then per-class non-maximum suppression."""

from __future__ import annotations

import keras
import tensorflow as tf

from . import boxes as bx


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
        self.supports_jit = False  # NMS has data-dependent shapes
        self.built = True

    def call(self, rois, probs, deltas):
        """(boxes, scores, class_ids, count) of the kept detections."""
        rois = tf.cast(rois, tf.float32)
        boxes = bx.clip(bx.decode(tf.cast(deltas, tf.float32)[:, :, 1:], rois[:, :, None, :]))
        real = tf.cast(bx.area(rois) > 0, tf.float32)[..., None]  # zero boxes pad the proposals
        scores = tf.cast(probs, tf.float32)[:, :, 1:] * real
        # Scores equal to the threshold pass (the op keeps only scores above its threshold).
        threshold = self.min_confidence - 1e-6
        kept, kept_scores, kept_classes, count = tf.image.combined_non_max_suppression(
            boxes, scores, self.max_instances, self.max_instances,
            iou_threshold=self.nms_threshold, score_threshold=threshold, clip_boxes=False)
        filled = tf.range(self.max_instances)[None, :] < count[:, None]
        class_ids = tf.where(filled, tf.cast(kept_classes, tf.int32) + 1, 0)
        return kept, kept_scores, class_ids, count

    def compute_output_shape(self, rois_shape, probs_shape=None, deltas_shape=None):
        batch, d = rois_shape[0], self.max_instances
        return (batch, d, 4), (batch, d), (batch, d), (batch,)

    def get_config(self):
        return {**super().get_config(), "max_instances": self.max_instances,
                "min_confidence": self.min_confidence, "nms_threshold": self.nms_threshold}

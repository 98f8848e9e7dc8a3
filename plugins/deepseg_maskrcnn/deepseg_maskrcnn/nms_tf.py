"""Non-maximum suppression's TensorFlow kernel: ``tf.image.combined_non_max_suppression``,
the same choices as :mod:`.nms`'s greedy pass (test_maskrcnn_backends.py compares them on
both backends), without its loop over the candidates; JAX runs the portable pass."""

from __future__ import annotations

import tensorflow as tf


def proposals(boxes, scores, count: int, threshold: float):
    """The ``count`` best boxes ``(B, count, 4)`` of ``boxes (B, N, 4)`` by ``scores (B, N)``
    kept by NMS at ``threshold``, zero boxes after the last."""
    kept, _, _, _ = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], scores[:, :, None], count, count, iou_threshold=threshold,
        clip_boxes=False)
    return kept


def detections(boxes, scores, limit: int, threshold: float, min_score: float):
    """Per-class NMS of ``boxes (B, R, K, 4)`` by ``scores (B, R, K)`` above ``min_score``:
    (boxes, scores, class ids from 1 (0: empty slot), count) of at most ``limit``, best first."""
    kept, kept_scores, kept_classes, count = tf.image.combined_non_max_suppression(
        boxes, scores, limit, limit, iou_threshold=threshold, score_threshold=min_score,
        clip_boxes=False)
    filled = tf.range(limit)[None, :] < count[:, None]
    return kept, kept_scores, tf.where(filled, tf.cast(kept_classes, tf.int32) + 1, 0), count

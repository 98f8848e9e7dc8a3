"""Box utilities in TensorFlow: IoU, delta encoding/decoding, clipping.

Boxes are ``(y1, x1, y2, x2)`` in normalized tile coordinates: 0 is the top/left edge of the
tile, 1 its bottom/right edge (pixel ``i`` covers ``[i, i + 1) / size``).
"""

from __future__ import annotations

import math

import tensorflow as tf

#: Scaling of the (dy, dx, dh, dw) regression targets (RPN and box head).
BOX_STD = (0.1, 0.1, 0.2, 0.2)
_MAX_LOG_SCALE = math.log(1000.0 / 16.0)


def area(boxes):
    """Area of ``(..., 4)`` boxes (0 for degenerate ones)."""
    return tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * tf.maximum(
        boxes[..., 3] - boxes[..., 1], 0.0)


def iou(a, b):
    """Intersection over union ``(N, M)`` of boxes ``a (N, 4)`` and ``b (M, 4)``."""
    a, b = a[:, None, :], b[None, :, :]
    top = tf.maximum(a[..., 0], b[..., 0])
    left = tf.maximum(a[..., 1], b[..., 1])
    bottom = tf.minimum(a[..., 2], b[..., 2])
    right = tf.minimum(a[..., 3], b[..., 3])
    inter = tf.maximum(bottom - top, 0.0) * tf.maximum(right - left, 0.0)
    union = area(a) + area(b) - inter
    return tf.math.divide_no_nan(inter, union)


def _centers(boxes):
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * h, boxes[..., 1] + 0.5 * w, h, w


def encode(boxes, anchors):
    """Regression targets ``(..., 4)`` that move ``anchors`` onto ``boxes`` (scaled by BOX_STD)."""
    ay, ax, ah, aw = _centers(anchors)
    by, bx, bh, bw = _centers(boxes)
    ah, aw = tf.maximum(ah, 1e-6), tf.maximum(aw, 1e-6)
    bh, bw = tf.maximum(bh, 1e-6), tf.maximum(bw, 1e-6)
    deltas = tf.stack([(by - ay) / ah, (bx - ax) / aw, tf.math.log(bh / ah),
                       tf.math.log(bw / aw)], axis=-1)
    return deltas / tf.constant(BOX_STD, deltas.dtype)


def decode(deltas, anchors):
    """Boxes obtained by applying ``deltas`` (scaled by BOX_STD) to ``anchors``."""
    deltas = deltas * tf.constant(BOX_STD, deltas.dtype)
    ay, ax, ah, aw = _centers(anchors)
    y = ay + deltas[..., 0] * ah
    x = ax + deltas[..., 1] * aw
    h = ah * tf.exp(tf.minimum(deltas[..., 2], _MAX_LOG_SCALE))
    w = aw * tf.exp(tf.minimum(deltas[..., 3], _MAX_LOG_SCALE))
    return tf.stack([y - 0.5 * h, x - 0.5 * w, y + 0.5 * h, x + 0.5 * w], axis=-1)


def clip(boxes):
    """Boxes clipped to the tile ``[0, 1]``."""
    return tf.clip_by_value(boxes, 0.0, 1.0)

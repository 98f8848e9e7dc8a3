"""Box utilities in ``keras.ops`` (TensorFlow and JAX): IoU, delta encoding/decoding, clipping.

Boxes are ``(y1, x1, y2, x2)`` in normalized tile coordinates: 0 is the top/left edge of the
tile, 1 its bottom/right edge (pixel ``i`` covers ``[i, i + 1) / size``).
"""

from __future__ import annotations

import math

from keras import ops

#: Scaling of the (dy, dx, dh, dw) regression targets (RPN and box head).
BOX_STD = (0.1, 0.1, 0.2, 0.2)
_MAX_LOG_SCALE = math.log(1000.0 / 16.0)


def area(boxes):
    """Area of ``(..., 4)`` boxes (0 for degenerate ones)."""
    return ops.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * ops.maximum(
        boxes[..., 3] - boxes[..., 1], 0.0)


def iou(a, b):
    """Intersection over union ``(..., N, M)`` of boxes ``a (..., N, 4)`` and ``b (..., M, 4)``
    (0 where the union is empty)."""
    a, b = ops.expand_dims(a, -2), ops.expand_dims(b, -3)
    top = ops.maximum(a[..., 0], b[..., 0])
    left = ops.maximum(a[..., 1], b[..., 1])
    bottom = ops.minimum(a[..., 2], b[..., 2])
    right = ops.minimum(a[..., 3], b[..., 3])
    inter = ops.maximum(bottom - top, 0.0) * ops.maximum(right - left, 0.0)
    union = area(a) + area(b) - inter
    return ops.where(union > 0, inter / ops.where(union > 0, union, 1.0), 0.0)


def _centers(boxes):
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * h, boxes[..., 1] + 0.5 * w, h, w


def encode(boxes, anchors):
    """Regression targets ``(..., 4)`` that move ``anchors`` onto ``boxes`` (scaled by BOX_STD)."""
    ay, ax, ah, aw = _centers(anchors)
    by, bx, bh, bw = _centers(boxes)
    ah, aw = ops.maximum(ah, 1e-6), ops.maximum(aw, 1e-6)
    bh, bw = ops.maximum(bh, 1e-6), ops.maximum(bw, 1e-6)
    deltas = ops.stack([(by - ay) / ah, (bx - ax) / aw, ops.log(bh / ah), ops.log(bw / aw)],
                       axis=-1)
    return deltas / ops.convert_to_tensor(BOX_STD, deltas.dtype)


def decode(deltas, anchors):
    """Boxes obtained by applying ``deltas`` (scaled by BOX_STD) to ``anchors``."""
    deltas = deltas * ops.convert_to_tensor(BOX_STD, deltas.dtype)
    ay, ax, ah, aw = _centers(anchors)
    y = ay + deltas[..., 0] * ah
    x = ax + deltas[..., 1] * aw
    h = ah * ops.exp(ops.minimum(deltas[..., 2], _MAX_LOG_SCALE))
    w = aw * ops.exp(ops.minimum(deltas[..., 3], _MAX_LOG_SCALE))
    return ops.stack([y - 0.5 * h, x - 0.5 * w, y + 0.5 * h, x + 0.5 * w], axis=-1)


def clip(boxes):
    """Boxes clipped to the tile ``[0, 1]``."""
    return ops.clip(boxes, 0.0, 1.0)


def batch_gather(values, index):
    """``values (B, N, ...)`` at ``index (B, K)`` of each row: ``(B, K, ...)``."""
    rows, size = ops.shape(values)[0], values.shape[1]
    flat = ops.reshape(values, (-1, *values.shape[2:]))
    offset = ops.expand_dims(ops.arange(rows, dtype="int32") * size, 1)
    return ops.take(flat, ops.cast(index, "int32") + offset, axis=0)

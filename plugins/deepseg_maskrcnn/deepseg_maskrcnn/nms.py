"""Batched greedy non-maximum suppression with static shapes (``keras.ops``, any backend; on
TensorFlow its own kernel, :mod:`.nms_tf`, makes the same choices faster).

Candidates come sorted best first, a fixed number per row with a validity mask; the result is
a fixed number of slots per row, the kept candidates best first and a mask of the filled ones.
"""

from __future__ import annotations

import keras
from keras import ops

from . import boxes as bx

#: run the keras.ops pass on TensorFlow too, instead of its combined_non_max_suppression
PORTABLE = False


def native_nms() -> bool:
    """Whether NMS runs TensorFlow's kernel (:mod:`.nms_tf`): on TensorFlow, unless PORTABLE."""
    return keras.backend.backend() == "tensorflow" and not PORTABLE


def suppress(boxes, valid, threshold: float, classes=None):
    """Kept ``(B, N)`` of the candidates ``boxes (B, N, 4)`` sorted by score (best first).

    Greedy: a valid candidate is kept unless a kept better one of its class (``classes (B, N)``,
    None: one class) overlaps it with IoU above ``threshold``. One pass over the N candidates,
    each comparing its box with all later ones (no N x N matrix).
    """
    boxes = ops.stop_gradient(ops.cast(boxes, "float32"))
    size = boxes.shape[1]
    later = ops.expand_dims(ops.arange(size, dtype="int32"), 0)

    def step(i, suppressed):
        box = ops.take(boxes, i, axis=1)  # (B, 4)
        alive = ops.take(valid & ~suppressed, i, axis=1)  # (B,)
        overlap = bx.iou(ops.expand_dims(box, 1), boxes)[:, 0, :]  # (B, N)
        hit = (overlap > threshold) & (later > i) & ops.expand_dims(alive, 1)
        if classes is not None:
            hit = hit & (classes == ops.expand_dims(ops.take(classes, i, axis=1), 1))
        return suppressed | hit

    suppressed = ops.fori_loop(0, size, step, ops.zeros_like(valid))
    return valid & ~suppressed


def first_kept(keep, limit: int):
    """Indices ``(B, limit)`` of the first ``limit`` kept candidates of each row, in order, and
    the mask ``(B, limit)`` of the slots filled (the rest point at candidate 0)."""
    size = keep.shape[1]
    rank = ops.cast(size - ops.arange(size, dtype="int32"), "float32")  # earlier ranks higher
    values, index = ops.top_k(ops.where(keep, rank, 0.0), k=min(limit, size))
    if limit > size:
        values = ops.pad(values, [[0, 0], [0, limit - size]])
        index = ops.pad(index, [[0, 0], [0, limit - size]])
    filled = values > 0
    return ops.where(filled, index, 0), filled

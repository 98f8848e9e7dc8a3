"""The five Mask R-CNN losses: RPN objectness and box, head class and box, and mask."""

from __future__ import annotations

from keras import ops


def smooth_l1(x):
    """Elementwise smooth L1 (Huber with delta 1)."""
    absolute = ops.abs(x)
    return ops.where(absolute < 1.0, 0.5 * ops.square(x), absolute - 0.5)


def sigmoid_cross_entropy(labels, logits):
    """Elementwise binary cross-entropy of ``logits`` against 0/1 ``labels`` (stable form)."""
    return (ops.maximum(logits, 0.0) - logits * labels
            + ops.log1p(ops.exp(-ops.abs(logits))))


def _mean(values, weights):
    """Weighted mean of ``values`` (0/1 ``weights``; 0 when no weight is 1)."""
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1.0)


def own_class(values, classes, axis: int):
    """``values`` at each item's class ``classes`` along ``axis`` (the axis after ``classes``'
    dimensions; a one-hot sum rather than a gather, the same on every backend)."""
    hot = ops.one_hot(classes, values.shape[axis], dtype=values.dtype)
    for _ in range(axis - classes.ndim):
        hot = ops.expand_dims(hot, -2)
    for _ in range(values.ndim - 1 - axis):
        hot = ops.expand_dims(hot, -1)
    return ops.sum(values * hot, axis=axis)


def rpn_class_loss(labels, logits):
    """Binary cross-entropy of objectness over the sampled anchors (label 1/0; -1 is ignored)."""
    weights = ops.cast(labels >= 0, "float32")
    bce = sigmoid_cross_entropy(ops.cast(labels > 0, "float32"), ops.cast(logits, "float32"))
    return _mean(bce, weights)


def rpn_box_loss(labels, targets, deltas):
    """Smooth L1 of the anchor deltas, averaged over the positive anchors."""
    per_anchor = ops.sum(smooth_l1(targets - ops.cast(deltas, "float32")), axis=-1)
    return _mean(per_anchor, ops.cast(labels > 0, "float32"))


def class_loss(classes, valid, logits):
    """Softmax cross-entropy of the head over the sampled ROIs (``valid`` marks them)."""
    logits = ops.cast(logits, "float32")
    ce = ops.logsumexp(logits, axis=-1) - own_class(logits, classes, 2)
    return _mean(ce, valid)


def box_loss(classes, targets, deltas):
    """Smooth L1 of the deltas predicted for each positive ROI's own class."""
    own = own_class(ops.cast(deltas, "float32"), classes, 2)
    per_roi = ops.sum(smooth_l1(targets - own), axis=-1)
    return _mean(per_roi, ops.cast(classes > 0, "float32"))


def mask_loss(classes, targets, logits):
    """Per-pixel binary cross-entropy of each positive ROI's own-class mask.

    ``classes (B, P)``, ``targets (B, P, m, m)``, ``logits (B, P, m, m, K)``.
    """
    own = own_class(ops.cast(logits, "float32"), classes, 4)
    bce = sigmoid_cross_entropy(targets, own)
    return _mean(ops.mean(bce, axis=(2, 3)), ops.cast(classes > 0, "float32"))

"""The five Mask R-CNN losses: RPN objectness and box, head class and box, and mask."""

from __future__ import annotations

import tensorflow as tf


def smooth_l1(x):
    """Elementwise smooth L1 (Huber with delta 1)."""
    absolute = tf.abs(x)
    return tf.where(absolute < 1.0, 0.5 * tf.square(x), absolute - 0.5)


def _mean(values, weights):
    return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))


def rpn_class_loss(labels, logits):
    """Binary cross-entropy of objectness over the sampled anchors (label 1/0; -1 is ignored)."""
    weights = tf.cast(labels >= 0, tf.float32)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(labels > 0, tf.float32),
                                                  tf.cast(logits, tf.float32))
    return _mean(bce, weights)


def rpn_box_loss(labels, targets, deltas):
    """Smooth L1 of the anchor deltas, averaged over the positive anchors."""
    per_anchor = tf.reduce_sum(smooth_l1(targets - tf.cast(deltas, tf.float32)), axis=-1)
    return _mean(per_anchor, tf.cast(labels > 0, tf.float32))


def class_loss(classes, valid, logits):
    """Softmax cross-entropy of the head over the sampled ROIs (``valid`` marks them)."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(classes, tf.cast(logits, tf.float32))
    return _mean(ce, valid)


def box_loss(classes, targets, deltas):
    """Smooth L1 of the deltas predicted for each positive ROI's own class."""
    own = tf.gather(tf.cast(deltas, tf.float32), classes, batch_dims=2)
    per_roi = tf.reduce_sum(smooth_l1(targets - own), axis=-1)
    return _mean(per_roi, tf.cast(classes > 0, tf.float32))


def mask_loss(classes, targets, logits):
    """Per-pixel binary cross-entropy of each positive ROI's own-class mask.

    ``classes (B, P)``, ``targets (B, P, m, m)``, ``logits (B, P, m, m, K)``.
    """
    own = tf.gather(tf.transpose(tf.cast(logits, tf.float32), (0, 1, 4, 2, 3)), classes,
                    batch_dims=2)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(targets, own)
    return _mean(tf.reduce_mean(bce, axis=(2, 3)), tf.cast(classes > 0, tf.float32))

"""Anchors over the pyramid levels P2..P6, in the order the RPN head emits its outputs."""

from __future__ import annotations

import tensorflow as tf

from .config import STRIDES


def level_anchors(rows, cols, height, width, stride: int, scale: float, ratios) -> tf.Tensor:
    """Normalized anchors ``(rows * cols * len(ratios), 4)`` of one level (row, col, ratio order).

    ``rows``/``cols``: the level's feature map size; ``height``/``width``: the tile's in pixels.
    Each anchor has area ``scale**2`` and width/height ``ratio``, centred on its feature cell.
    """
    ratios = tf.constant(ratios, tf.float32)
    half_h = 0.5 * scale / tf.sqrt(ratios)
    half_w = 0.5 * scale * tf.sqrt(ratios)
    cy = (tf.cast(tf.range(rows), tf.float32) + 0.5) * stride
    cx = (tf.cast(tf.range(cols), tf.float32) + 0.5) * stride
    cy = tf.reshape(cy, (-1, 1, 1))
    cx = tf.reshape(cx, (1, -1, 1))
    shape = (rows, cols, tf.size(ratios))
    boxes = tf.stack([tf.broadcast_to(cy - half_h, shape), tf.broadcast_to(cx - half_w, shape),
                      tf.broadcast_to(cy + half_h, shape), tf.broadcast_to(cx + half_w, shape)],
                     axis=-1)
    scale_to_tile = tf.stack([height, width, height, width])
    return tf.reshape(boxes, (-1, 4)) / tf.cast(scale_to_tile, tf.float32)


def pyramid_anchors(image, pyramid, scales, ratios) -> tf.Tensor:
    """All anchors ``(A, 4)`` for ``image (B, H, W, b)`` and feature maps ``pyramid`` (P2..P6)."""
    height, width = tf.shape(image)[1], tf.shape(image)[2]
    out = []
    for feature, stride, scale in zip(pyramid, STRIDES, scales):
        shape = tf.shape(feature)
        out.append(level_anchors(shape[1], shape[2], height, width, stride, scale, ratios))
    return tf.concat(out, axis=0)

"""Anchors over the pyramid levels P2..P6, in the order the RPN head emits its outputs."""

from __future__ import annotations

import tensorflow as tf

from .config import STRIDES


def anchor_shapes(scale: float, ratios, octaves: int = 1) -> list[tuple[float, float]]:
    """(height, width) in pixels of the anchors of one level, octave-major then ratio.

    Octave ``k`` of ``octaves`` has side ``scale * 2**(k / octaves)`` (RetinaNet's scales within
    an octave: with 3, no box between the level's scale and the next is far from an anchor);
    each anchor has width/height ``ratio``.
    """
    sides = [scale * 2.0 ** (k / octaves) for k in range(octaves)]
    return [(side / ratio ** 0.5, side * ratio ** 0.5) for side in sides for ratio in ratios]


def level_anchors(rows, cols, height, width, stride: int, shapes) -> tf.Tensor:
    """Normalized anchors ``(rows * cols * len(shapes), 4)`` of one level (row, col, shape order).

    ``rows``/``cols``: the level's feature map size; ``height``/``width``: the tile's in pixels;
    ``shapes``: the anchors' (height, width) in pixels, each centred on its feature cell.
    """
    shapes = tf.constant(shapes, tf.float32)
    half_h, half_w = 0.5 * shapes[:, 0], 0.5 * shapes[:, 1]
    cy = (tf.cast(tf.range(rows), tf.float32) + 0.5) * stride
    cx = (tf.cast(tf.range(cols), tf.float32) + 0.5) * stride
    cy = tf.reshape(cy, (-1, 1, 1))
    cx = tf.reshape(cx, (1, -1, 1))
    shape = (rows, cols, tf.shape(shapes)[0])
    boxes = tf.stack([tf.broadcast_to(cy - half_h, shape), tf.broadcast_to(cx - half_w, shape),
                      tf.broadcast_to(cy + half_h, shape), tf.broadcast_to(cx + half_w, shape)],
                     axis=-1)
    scale_to_tile = tf.stack([height, width, height, width])
    return tf.reshape(boxes, (-1, 4)) / tf.cast(scale_to_tile, tf.float32)


def pyramid_anchors(image, pyramid, scales, ratios, octaves: int = 1) -> tf.Tensor:
    """All anchors ``(A, 4)`` for ``image (B, H, W, b)`` and feature maps ``pyramid`` (P2..P6)."""
    height, width = tf.shape(image)[1], tf.shape(image)[2]
    out = []
    for feature, stride, scale in zip(pyramid, STRIDES, scales):
        shape = tf.shape(feature)
        out.append(level_anchors(shape[1], shape[2], height, width, stride,
                                 anchor_shapes(scale, ratios, octaves)))
    return tf.concat(out, axis=0)

"""Anchors over the pyramid levels P2..P6, in the order the RPN head emits its outputs.

The anchors are constants of the tile size (numpy), the same arrays on every backend.
"""

from __future__ import annotations

import numpy as np

from .config import STRIDES


def anchor_shapes(scale: float, ratios, octaves: int = 1) -> list[tuple[float, float]]:
    """(height, width) in pixels of the anchors of one level, octave-major then ratio.

    Octave ``k`` of ``octaves`` has side ``scale * 2**(k / octaves)`` (RetinaNet's scales within
    an octave: with 3, no box between the level's scale and the next is far from an anchor);
    each anchor has width/height ``ratio``.
    """
    sides = [scale * 2.0 ** (k / octaves) for k in range(octaves)]
    return [(side / ratio ** 0.5, side * ratio ** 0.5) for side in sides for ratio in ratios]


def level_anchors(rows: int, cols: int, height: int, width: int, stride: int,
                  shapes) -> np.ndarray:
    """Normalized anchors ``(rows * cols * len(shapes), 4)`` of one level (row, col, shape order).

    ``rows``/``cols``: the level's feature map size; ``height``/``width``: the tile's in pixels;
    ``shapes``: the anchors' (height, width) in pixels, each centred on its feature cell.
    """
    shapes = np.asarray(shapes, np.float32)
    half_h, half_w = np.float32(0.5) * shapes[:, 0], np.float32(0.5) * shapes[:, 1]
    cy = ((np.arange(rows, dtype=np.float32) + 0.5) * stride).reshape(-1, 1, 1)
    cx = ((np.arange(cols, dtype=np.float32) + 0.5) * stride).reshape(1, -1, 1)
    shape = (rows, cols, len(shapes))
    boxes = np.stack([np.broadcast_to(cy - half_h, shape), np.broadcast_to(cx - half_w, shape),
                      np.broadcast_to(cy + half_h, shape), np.broadcast_to(cx + half_w, shape)],
                     axis=-1)
    scale_to_tile = np.array([height, width, height, width], np.float32)
    return (boxes.reshape(-1, 4) / scale_to_tile).astype(np.float32)


def pyramid_anchors(height: int, width: int, scales, ratios, octaves: int = 1) -> np.ndarray:
    """All anchors ``(A, 4)`` of a ``height`` x ``width`` tile over P2..P6 (strides 4..64;
    each level's map is the tile size over its stride, rounded up, as the FPN makes it)."""
    out = [level_anchors(-(-height // stride), -(-width // stride), height, width, stride,
                         anchor_shapes(scale, ratios, octaves))
           for stride, scale in zip(STRIDES, scales)]
    return np.concatenate(out, axis=0)

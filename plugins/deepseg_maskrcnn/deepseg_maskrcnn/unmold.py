"""Turning the network's detections into instances with box-sized masks (numpy)."""

from __future__ import annotations

import math

import numpy as np

from deepseg_core.contracts.model import Instance, TileResult
from deepseg_core.contracts.model import mask_extent as mask_box


def _interpolate(values: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``values`` at fractional indices ``coords`` along ``axis``."""
    size = values.shape[axis]
    coords = np.clip(coords, 0.0, size - 1.0)
    low = np.floor(coords).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    weight = (coords - low).astype(np.float32)
    if axis == 0:
        return values[low] * (1 - weight)[:, None] + values[high] * weight[:, None]
    return values[:, low] * (1 - weight)[None, :] + values[:, high] * weight[None, :]


def paste_mask(mask: np.ndarray, box, rows: int, cols: int, threshold: float = 0.5):
    """``(window, (row0, col0))``: the ``(m, m)`` box-relative probabilities ``mask`` of pixel
    ``box`` as a bool window of a ``rows`` x ``cols`` tile, and the window's top-left pixel.

    Each tile pixel inside the box (clipped to the tile) samples the mask bilinearly at its
    centre; ``None`` when the box covers no pixel.
    """
    y1, x1, y2, x2 = (float(v) for v in box)
    r0, r1 = max(math.floor(y1), 0), min(math.ceil(y2), rows)
    c0, c1 = max(math.floor(x1), 0), min(math.ceil(x2), cols)
    if r1 <= r0 or c1 <= c0 or y2 <= y1 or x2 <= x1:
        return None
    m_rows, m_cols = mask.shape
    ys = (np.arange(r0, r1) + 0.5 - y1) / (y2 - y1) * m_rows - 0.5
    xs = (np.arange(c0, c1) + 0.5 - x1) / (x2 - x1) * m_cols - 0.5
    patch = _interpolate(_interpolate(np.asarray(mask, np.float32), ys, 0), xs, 1)
    return patch >= threshold, (r0, c0)


def tile_results(outputs: dict, rows: int, cols: int, threshold: float = 0.5) -> list[TileResult]:
    """One TileResult per tile from the model's output dict (numpy arrays); each instance's
    mask is cut to its pixels' box (``Instance.origin``), empty masks are dropped."""
    results = []
    for t, count in enumerate(np.asarray(outputs["count"]).astype(int)):
        instances = []
        for d in range(count):
            pasted = paste_mask(outputs["masks"][t, d], outputs["boxes"][t, d], rows, cols,
                                threshold)
            box = None if pasted is None else mask_box(pasted[0])
            if box is None:
                continue
            (r0, c0), (br0, bc0, br1, bc1) = pasted[1], box
            instances.append(Instance(
                int(outputs["class_ids"][t, d]), float(outputs["scores"][t, d]),
                pasted[0][br0:br1, bc0:bc1], (r0 + br0, c0 + bc0, r0 + br1, c0 + bc1),
                origin=(r0 + br0, c0 + bc0)))
        results.append(TileResult(instances=instances))
    return results

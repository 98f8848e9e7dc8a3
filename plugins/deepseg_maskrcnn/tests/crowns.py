"""Synthetic tree-crown scenes and instance F1 for the Mask R-CNN tests and benchmark.

A scene: a textured background (smooth blotches plus pixel noise) with round, textured
'crowns' of varying radius, each brighter at its centre and with its own band signature.
"""

from __future__ import annotations

import numpy as np

#: A small configuration for 128-pixel tiles of crowns 10-26 pixels across.
CROWN_PARAMS = {
    "backbone": "resnet_tiny", "fpn_channels": 64, "head_fc": 256, "mask_channels": 64,
    "anchor_scales": [8, 16, 32, 64, 128], "rpn_train_anchors": 128, "pre_nms_limit": 1000,
    "proposals_train": 300, "proposals_infer": 200, "rois_per_image": 64,
    "detection_min_confidence": 0.7,
}


def _smooth_noise(rng, size: int, cell: int, bands: int) -> np.ndarray:
    """Blotchy noise ``(size, size, bands)``: coarse random grid, bilinearly enlarged."""
    coarse = rng.normal(0.0, 1.0, (size // cell + 2, size // cell + 2, bands))
    pos = (np.arange(size) + 0.5) / cell
    low = np.floor(pos).astype(int)
    w = (pos - low)[:, None]
    rows = coarse[low] * (1 - w[..., None]) + coarse[low + 1] * w[..., None]
    cols = rows[:, low] * (1 - w[None]) + rows[:, low + 1] * w[None]
    return cols


def crown_scene(seed: int, size: int = 128, bands: int = 4, radii=(5, 13), count=(8, 16)):
    """One scene: image ``(size, size, bands)`` float32 and instance map ``(size, size)`` int32.

    Crowns may touch but do not overlap; instance ids are arbitrary distinct positive ints.
    Round bright 'soil' patches with another band signature are distractors (background).
    """
    rng = np.random.default_rng(seed)
    image = 0.6 * _smooth_noise(rng, size, 16, bands) + 0.3 * rng.normal(0, 1, (size, size,
                                                                               bands))
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    crown = np.resize([0.5, 1.0, 0.2, 1.4], bands)  # e.g. blue, green, red, near infrared
    soil = np.resize([1.2, 0.9, 1.3, 0.3], bands)
    wanted, placed = rng.integers(*count, endpoint=True), []
    for _ in range(300):
        if len(placed) >= wanted + 3:
            break
        r = rng.uniform(*radii)
        cy, cx = rng.uniform(-r / 2, size + r / 2, 2)  # crowns may be cut by the tile edge
        if any(np.hypot(cy - y, cx - x) < r + q for y, x, q in placed):
            continue
        stretch = rng.uniform(0.8, 1.2)
        dist = np.hypot((yy - cy) * stretch, (xx - cx) / stretch) / r
        inside = dist < 1.0
        if inside.sum() < 12:
            continue
        placed.append((cy, cx, r))
        is_crown = len(placed) <= wanted
        if is_crown:
            labels[inside] = int(rng.integers(1, 2**20)) * 64 + len(placed)  # arbitrary ids
        profile = (1.0 - 0.6 * dist[inside] ** 2)[:, None] if is_crown else 0.8
        texture = 0.4 * rng.normal(0, 1, (int(inside.sum()), bands))
        image[inside] = (0.4 * image[inside] + profile * (crown if is_crown else soil)
                         + texture)
    return image.astype(np.float32), labels


def crown_tiles(n: int, seed: int, size: int = 128, bands: int = 4):
    """``n`` scenes: images ``(n, size, size, bands)``, instance maps ``(n, size, size)``."""
    scenes = [crown_scene(seed * 100_003 + i, size, bands) for i in range(n)]
    return np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])


def instance_f1(predicted, truth: np.ndarray, iou_threshold: float = 0.5):
    """(tp, fp, fn) of instances ``predicted`` (list of Instance) against an instance map.

    Greedy matching: predictions in decreasing score take the unmatched true instance of
    highest mask IoU, a true positive when that IoU reaches ``iou_threshold``.
    """
    ids = [i for i in np.unique(truth) if i > 0]
    masks = [truth == i for i in ids]
    matched = [False] * len(ids)
    tp = 0
    for inst in sorted(predicted, key=lambda p: -p.score):
        best, best_j, found = 0.0, -1, inst.full_mask(truth.shape)
        for j, mask in enumerate(masks):
            if matched[j]:
                continue
            inter = np.logical_and(mask, found).sum()
            if inter:
                iou = inter / np.logical_or(mask, found).sum()
                if iou > best:
                    best, best_j = iou, j
        if best >= iou_threshold:
            matched[best_j] = True
            tp += 1
    return tp, len(predicted) - tp, len(ids) - tp


def f1_score(tp: int, fp: int, fn: int) -> float:
    """F1 from counts (1.0 when there is nothing to find and nothing found)."""
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)

"""Mask IoU, one-to-one greedy matching and COCO-style average precision (pure numpy).

Matching follows COCO: predictions in descending score order (stable for ties) each take the
still unmatched truth object of highest IoU, if that IoU is at least the threshold. Average
precision is COCO's 101-point interpolated precision: the precision envelope (best precision at
any higher recall) read at recall 0, 0.01, ..., 1 and averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

#: COCO's IoU thresholds .50:.05:.95.
IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)
#: COCO's recall points for interpolated precision.
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def truth_objects(truth_ids: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The ids (> 0) present in an instance-id array and ``dense``: the array as 0..g indices."""
    ids, dense = np.unique(np.asarray(truth_ids), return_inverse=True)
    dense = dense.reshape(np.shape(truth_ids))
    if ids.size and ids[0] == 0:
        return ids[1:], dense
    return ids, dense + 1  # no background pixel in the tile: shift so that 0 stays free


def mask_ious(dense_truth: np.ndarray, ntruth: int, masks: Sequence[np.ndarray]) -> np.ndarray:
    """IoU ``(npred, ntruth)`` of boolean masks with the objects of a dense 0..g id array."""
    truth_area = np.bincount(dense_truth.ravel(), minlength=ntruth + 1)[1:]
    ious = np.zeros((len(masks), ntruth))
    for i, mask in enumerate(masks):
        inter = np.bincount(dense_truth[mask], minlength=ntruth + 1)[1:]
        union = truth_area + int(mask.sum()) - inter
        ious[i] = np.divide(inter, union, out=np.zeros(ntruth), where=union > 0)
    return ious


def greedy_match(ious: np.ndarray, scores: ArrayLike, threshold: float) -> np.ndarray:
    """True-positive flag of each prediction (input order) after one-to-one greedy matching."""
    npred, ntruth = ious.shape
    tp = np.zeros(npred, bool)
    if not ntruth:
        return tp
    taken = np.zeros(ntruth, bool)
    for i in np.argsort(-np.asarray(scores, float), kind="mergesort"):
        candidates = np.where(taken, -1.0, ious[i])
        j = int(np.argmax(candidates))
        if candidates[j] >= threshold:
            taken[j] = tp[i] = True
    return tp


def pr_curve(scores: ArrayLike, tp: ArrayLike, ntruth: int) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision after each prediction, in descending score order."""
    order = np.argsort(-np.asarray(scores, float), kind="mergesort")
    hits = np.asarray(tp, bool)[order]
    tp_sum = np.cumsum(hits)
    fp_sum = np.cumsum(~hits)
    recall = tp_sum / ntruth if ntruth else np.zeros(len(hits))
    precision = tp_sum / np.maximum(tp_sum + fp_sum, 1)
    return recall, precision


def interpolated_precision(scores: ArrayLike, tp: ArrayLike, ntruth: int) -> np.ndarray:
    """Precision envelope read at COCO's 101 recall points (0 beyond the highest recall)."""
    recall, precision = pr_curve(scores, tp, ntruth)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if precision.size else precision
    index = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.zeros(RECALL_POINTS.size)
    inside = index < recall.size
    sampled[inside] = envelope[index[inside]]
    return sampled


def average_precision(scores: ArrayLike, tp: ArrayLike, ntruth: int) -> float:
    """COCO 101-point interpolated AP; nan without truth objects, 0 without predictions."""
    if not ntruth:
        return float("nan")
    return float(interpolated_precision(scores, tp, ntruth).mean())


def detection_scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 = 2TP / (2TP + FP + FN) from counts (nan where undefined)."""
    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(2 * tp, 2 * tp + fp + fn)

"""Training targets from instance-id label tiles (numpy; runs in the data pipeline)."""

from __future__ import annotations

import warnings

import numpy as np


def instance_boxes(label: np.ndarray):
    """Ids ``(k,)``, pixel counts, boxes ``(k, 4)`` (row0, col0, row1, col1; ends exclusive) of
    the positive ids of one instance map, and each foreground pixel's index into the ids."""
    foreground = label > 0
    ids, inverse, counts = np.unique(label[foreground], return_inverse=True, return_counts=True)
    rows, cols = np.nonzero(foreground)
    k = len(ids)
    boxes = np.empty((k, 4), np.int64)
    boxes[:, :2] = np.iinfo(np.int64).max
    boxes[:, 2:] = -1
    np.minimum.at(boxes[:, 0], inverse, rows)
    np.minimum.at(boxes[:, 1], inverse, cols)
    np.maximum.at(boxes[:, 2], inverse, rows + 1)
    np.maximum.at(boxes[:, 3], inverse, cols + 1)
    return ids, counts, boxes, foreground, inverse


def instance_targets(labels: np.ndarray, instance_classes, max_instances: int) -> dict:
    """Padded targets of a batch of instance maps ``(n, r, c)`` (0 = background).

    Returns ``gt_boxes (n, M, 4)`` float32 pixel boxes, ``gt_class_ids (n, M)`` int32 (0 marks
    padding) and ``gt_instances (n, r, c)`` int32 where slot ``j``'s pixels hold ``j + 1``;
    ``M = max_instances``. Ids whose class is 0 or missing from ``instance_classes[i]`` are
    background (with ``instance_classes=None`` every id is class 1). A tile with more than
    ``M`` objects keeps the ``M`` largest.
    """
    labels = np.asarray(labels)
    n, rows, cols = labels.shape
    gt_boxes = np.zeros((n, max_instances, 4), np.float32)
    gt_classes = np.zeros((n, max_instances), np.int32)
    slots = np.zeros((n, rows, cols), np.int32)
    for i in range(n):
        ids, counts, boxes, foreground, inverse = instance_boxes(labels[i])
        if instance_classes is None:
            classes = np.ones(len(ids), np.int64)
        else:
            table = instance_classes[i] or {}
            classes = np.array([int(table.get(int(v), 0)) for v in ids], np.int64)
        kept = np.flatnonzero(classes > 0)
        if len(kept) > max_instances:
            warnings.warn(f"tile with {len(kept)} objects: only the {max_instances} largest "
                          f"are trained on (raise the model parameter max_instances)",
                          stacklevel=2)
            kept = np.sort(kept[np.argsort(-counts[kept], kind="stable")[:max_instances]])
        slot_of = np.zeros(len(ids), np.int32)
        slot_of[kept] = np.arange(1, len(kept) + 1)
        slots[i][foreground] = slot_of[inverse]
        gt_boxes[i, :len(kept)] = boxes[kept]
        gt_classes[i, :len(kept)] = classes[kept]
    return {"gt_boxes": gt_boxes, "gt_class_ids": gt_classes, "gt_instances": slots}

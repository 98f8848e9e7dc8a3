"""Training targets: anchor labels/deltas for the RPN, sampled ROIs with class/box/mask targets.

Ground truth per tile: boxes ``(M, 4)`` normalized, class ids ``(M,)`` (0 marks padding) and
an instance map ``(H, W)`` where the pixels of ground-truth slot ``j`` hold ``j + 1``. Static
shapes throughout (``keras.ops``): padding is masked, never removed.
"""

from __future__ import annotations

import keras
from keras import ops

from . import boxes as bx
from . import sampling as rs
from .roialign import crop_regions

_CHUNK = 32  # ground-truth boxes compared with all boxes at once


def match(boxes, gt, valid):
    """Best IoU ``(B, N)`` of each of ``boxes ((B,) N, 4)`` with the valid ``gt (B, M, 4)``,
    the index of that box (0 when none overlaps) and whether the box is the best match of some
    ground-truth box (ties included). The ground truth is read in chunks, up to the last valid
    box of the batch, so no ``N x M`` matrix is made."""
    chunk = min(_CHUNK, gt.shape[1])
    chunks = -(-gt.shape[1] // chunk)
    pad = chunks * chunk - gt.shape[1]
    gt = ops.pad(ops.cast(gt, "float32"), [[0, 0], [0, pad], [0, 0]])
    valid = ops.pad(ops.cast(valid, "int32"), [[0, 0], [0, pad]]) > 0
    used = ops.max(ops.where(valid, ops.arange(chunks * chunk, dtype="int32") + 1, 0))
    if boxes.ndim == 2:
        boxes = ops.expand_dims(boxes, 0)
    shape = ops.shape(boxes[..., 0] + gt[:, :1, 0])  # (B, N)
    state = (ops.zeros((), "int32"), ops.zeros(shape, "float32"), ops.zeros(shape, "int32"),
             ops.zeros(shape, "bool"))

    def more(j, best, index, is_best):
        return j * chunk < used

    def step(j, best, index, is_best):
        part = ops.slice(gt, [0, j * chunk, 0], [ops.shape(gt)[0], chunk, 4])
        ok = ops.expand_dims(ops.slice(valid, [0, j * chunk], [ops.shape(gt)[0], chunk]), 1)
        overlap = ops.where(ok, bx.iou(boxes, part), -1.0)  # (B, N, chunk)
        part_best = ops.max(overlap, axis=2)
        better = part_best > best
        index = ops.where(better, ops.cast(ops.argmax(overlap, axis=2), "int32") + j * chunk,
                          index)
        gt_best = ops.expand_dims(ops.max(overlap, axis=1), 1)  # (B, 1, chunk)
        hit = (overlap >= gt_best - 1e-7) & (gt_best > 0)
        return (j + 1, ops.where(better, part_best, best), index,
                is_best | ops.any(hit, axis=2))

    _, best, index, is_best = ops.while_loop(more, step, state, maximum_iterations=chunks)
    return best, index, is_best


def rpn_targets(anchors, gt_boxes, gt_valid, count: int, positive_fraction: float,
                positive_iou: float = 0.7, negative_iou: float = 0.3, step=0):
    """Anchor labels ``(B, A)`` (1 object, 0 background, -1 unused) and deltas ``(B, A, 4)``.

    Positive: IoU >= ``positive_iou`` with a ground-truth box, or the best anchor of a box;
    negative: IoU < ``negative_iou``. ``count`` anchors per tile are sampled, at most
    ``positive_fraction`` positive (:mod:`.sampling`, drawn from ``step``).
    """
    anchors = ops.convert_to_tensor(anchors, "float32")
    gt_boxes = ops.cast(gt_boxes, "float32")
    best, index, is_best = match(anchors, gt_boxes, gt_valid)
    positive = (best >= positive_iou) | is_best
    negative = (best < negative_iou) & ~is_best
    positive = rs.choose(positive, rs.random_keys(best, step, rs.RPN_POSITIVE),
                         int(count * positive_fraction))
    left = count - ops.sum(ops.cast(positive, "int32"), axis=1)
    negative = rs.choose(negative, rs.random_keys(best, step, rs.RPN_NEGATIVE), count, left)
    labels = ops.where(positive, 1, ops.where(negative, 0, -1))
    matched = bx.batch_gather(gt_boxes, index)
    deltas = bx.encode(matched, ops.expand_dims(anchors, 0))
    return labels, ops.where(ops.expand_dims(positive, -1), deltas, 0.0)


@keras.saving.register_keras_serializable(package="deepseg_maskrcnn")
class DetectionTargetLayer(keras.layers.Layer):
    """Samples ``rois_per_image`` ROIs per tile from the proposals (plus the GT boxes).

    ``(proposals (B, N, 4), gt_boxes (B, M, 4), gt_class_ids (B, M), gt_instances (B, H, W))``
    -> rois ``(B, R, 4)`` positives first, class ids ``(B, R)`` (0 background), box deltas
    ``(B, R, 4)``, sampled flags ``(B, R)`` and mask targets ``(B, P, m, m)`` of the first
    ``P = round(R * positive_fraction)`` ROIs. ROIs with IoU >= 0.5 are positive.
    """

    def __init__(self, rois_per_image: int, positive_fraction: float, mask_shape: int, **kwargs):
        super().__init__(**kwargs)
        self.rois_per_image, self.positive_fraction = rois_per_image, positive_fraction
        self.mask_shape = mask_shape
        self.positives = max(1, round(rois_per_image * positive_fraction))
        self.built = True

    def call(self, proposals, gt_boxes, gt_class_ids, gt_instances, step=0):
        """(rois, class_ids, deltas, sampled, masks) of the sampled ROIs of each tile."""
        total, npos = self.rois_per_image, self.positives
        gt_boxes = ops.cast(gt_boxes, "float32")
        gt_classes = ops.cast(gt_class_ids, "int32")
        valid = gt_classes > 0
        rois = ops.concatenate([ops.cast(proposals, "float32"), gt_boxes], axis=1)
        real = ops.concatenate([bx.area(proposals) > 0, valid], axis=1)
        best, index, _ = match(rois, gt_boxes, valid)
        positive = rs.choose(real & (best >= 0.5), rs.random_keys(best, step, rs.ROI_POSITIVE),
                             npos)
        left = total - ops.sum(ops.cast(positive, "int32"), axis=1)
        negative = rs.choose(real & (best < 0.5), rs.random_keys(best, step, rs.ROI_NEGATIVE),
                             total, left)
        size = rois.shape[1]
        order = size - ops.arange(size, dtype="int32")  # positives, negatives, each in order
        key = ops.where(positive, 2 * size + order, ops.where(negative, order, -1))
        key, slot = ops.top_k(key, k=total) if total <= size else self._padded(key, total)
        sampled = key >= 0
        is_pos = key > 2 * size
        chosen = bx.batch_gather(rois, slot) * ops.cast(ops.expand_dims(sampled, -1), "float32")
        matched = bx.batch_gather(index, slot)
        classes = ops.where(is_pos, bx.batch_gather(gt_classes, matched), 0)
        deltas = ops.where(ops.expand_dims(is_pos, -1),
                           bx.encode(bx.batch_gather(gt_boxes, matched), chosen), 0.0)
        ids = crop_regions(ops.expand_dims(ops.cast(gt_instances, "float32"), -1),
                           chosen[:, :npos], self.mask_shape, "nearest")[..., 0]
        own = ops.expand_dims(ops.expand_dims(matched[:, :npos] + 1, -1), -1)
        masks = ((ops.cast(ops.round(ids), "int32") == own)
                 & ops.expand_dims(ops.expand_dims(is_pos[:, :npos], -1), -1))
        return chosen, classes, deltas, ops.cast(sampled, "float32"), ops.cast(masks, "float32")

    @staticmethod
    def _padded(key, total: int):
        size = key.shape[1]
        key, slot = ops.top_k(key, k=size)
        return (ops.pad(key, [[0, 0], [0, total - size]], constant_values=-1),
                ops.pad(slot, [[0, 0], [0, total - size]]))

    def get_config(self):
        return {**super().get_config(), "rois_per_image": self.rois_per_image,
                "positive_fraction": self.positive_fraction, "mask_shape": self.mask_shape}

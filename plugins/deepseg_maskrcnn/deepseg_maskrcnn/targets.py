"""Training targets: anchor labels/deltas for the RPN, sampled ROIs with class/box/mask targets.

Ground truth per tile: boxes ``(M, 4)`` normalized, class ids ``(M,)`` (0 marks padding) and
an instance map ``(H, W)`` where the pixels of ground-truth slot ``j`` hold ``j + 1``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from . import boxes as bx
from .roialign import crop_regions


def _match(rois, gt):
    """Best IoU ``(N,)`` of each ROI with ``gt (G, 4)`` and its index (0 when there is no GT)."""
    overlaps = tf.concat([bx.iou(rois, gt), tf.zeros((tf.shape(rois)[0], 1))], axis=1)
    best = tf.reduce_max(overlaps, axis=1)
    index = tf.minimum(tf.argmax(overlaps, axis=1, output_type=tf.int32),
                       tf.maximum(tf.shape(gt)[0] - 1, 0))
    return best, index, overlaps[:, :-1]


def _sample(candidates, limit):
    """At most ``limit`` of the index vector ``candidates``, chosen at random."""
    return tf.random.shuffle(candidates)[:limit]


def rpn_targets(anchors, gt_boxes, gt_valid, count: int, positive_fraction: float,
                positive_iou: float = 0.7, negative_iou: float = 0.3):
    """Anchor labels ``(B, A)`` (1 object, 0 background, -1 unused) and deltas ``(B, A, 4)``.

    Positive: IoU >= ``positive_iou`` with a ground-truth box, or the best anchor of a box;
    negative: IoU < ``negative_iou``. ``count`` anchors per tile are sampled, at most
    ``positive_fraction`` positive.
    """
    size = tf.shape(anchors)[0]

    def one(args):
        boxes, valid = args
        gt = tf.boolean_mask(boxes, valid)
        best, index, overlaps = _match(anchors, gt)
        gt_best = tf.reduce_max(tf.concat([overlaps, tf.zeros((1, tf.shape(gt)[0]))], 0), 0)
        is_best = tf.reduce_any((overlaps >= gt_best[None, :] - 1e-7) & (gt_best[None, :] > 0), 1)
        positive = tf.where((best >= positive_iou) | is_best)[:, 0]
        negative = tf.where((best < negative_iou) & ~is_best)[:, 0]
        positive = _sample(positive, int(count * positive_fraction))
        negative = _sample(negative, count - tf.shape(positive)[0])
        labels = tf.fill([size], -1)
        labels = tf.tensor_scatter_nd_update(labels, positive[:, None],
                                             tf.ones_like(positive, tf.int32))
        labels = tf.tensor_scatter_nd_update(labels, negative[:, None],
                                             tf.zeros_like(negative, tf.int32))
        matched = tf.gather(tf.concat([gt, tf.zeros((1, 4))], 0), index)
        deltas = bx.encode(matched, anchors) * tf.cast(labels > 0, tf.float32)[:, None]
        return labels, deltas

    return tf.map_fn(one, (gt_boxes, gt_valid), fn_output_signature=(
        tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None, 4), tf.float32)))


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
        self.supports_jit = False  # sampling has data-dependent shapes
        self.built = True

    def _one(self, args):
        proposals, gt_boxes, gt_classes, instances = args
        total, npos = self.rois_per_image, self.positives
        valid = gt_classes > 0
        gt = tf.boolean_mask(gt_boxes, valid)
        classes = tf.boolean_mask(gt_classes, valid)
        slots = tf.cast(tf.where(valid)[:, 0], tf.int32) + 1
        rois = tf.concat([tf.boolean_mask(proposals, bx.area(proposals) > 0), gt], axis=0)
        best, index, _ = _match(rois, gt)
        positive = _sample(tf.where(best >= 0.5)[:, 0], npos)
        negative = _sample(tf.where(best < 0.5)[:, 0], total - tf.shape(positive)[0])
        pos_rois = tf.gather(rois, positive)
        pos_match = tf.gather(index, positive)
        chosen = tf.concat([pos_rois, tf.gather(rois, negative)], axis=0)
        pad = total - tf.shape(chosen)[0]
        pos_pad = npos - tf.shape(positive)[0]
        roi_classes = tf.pad(tf.gather(classes, pos_match), [[0, total - tf.shape(positive)[0]]])
        deltas = bx.encode(tf.gather(gt, pos_match), pos_rois)
        ids = crop_regions(tf.cast(instances, tf.float32)[None, :, :, None], pos_rois,
                           tf.zeros_like(positive, tf.int32), self.mask_shape, "nearest")
        masks = tf.cast(tf.equal(tf.cast(tf.round(ids[..., 0]), tf.int32),
                                 tf.gather(slots, pos_match)[:, None, None]), tf.float32)
        return (tf.pad(chosen, [[0, pad], [0, 0]]), roi_classes,
                tf.pad(deltas, [[0, total - tf.shape(positive)[0]], [0, 0]]),
                tf.pad(tf.ones(tf.shape(chosen)[:1]), [[0, pad]]),
                tf.pad(masks, [[0, pos_pad], [0, 0], [0, 0]]))

    def call(self, proposals, gt_boxes, gt_class_ids, gt_instances):
        """(rois, class_ids, deltas, sampled, masks) of the sampled ROIs of each tile."""
        total, m = self.rois_per_image, self.mask_shape
        return tf.map_fn(self._one, (tf.cast(proposals, tf.float32), gt_boxes,
                                     tf.cast(gt_class_ids, tf.int32),
                                     tf.cast(gt_instances, tf.int32)),
                         fn_output_signature=(tf.TensorSpec((total, 4), tf.float32),
                                              tf.TensorSpec((total,), tf.int32),
                                              tf.TensorSpec((total, 4), tf.float32),
                                              tf.TensorSpec((total,), tf.float32),
                                              tf.TensorSpec((self.positives, m, m), tf.float32)))

    def get_config(self):
        return {**super().get_config(), "rois_per_image": self.rois_per_image,
                "positive_fraction": self.positive_fraction, "mask_shape": self.mask_shape}

"""Proposal layer: decode the RPN outputs on the anchors, keep the best, suppress overlaps."""

from __future__ import annotations

import keras
import tensorflow as tf

from . import boxes as bx


@keras.saving.register_keras_serializable(package="deepseg_maskrcnn")
class ProposalLayer(keras.layers.Layer):
    """``(rpn_logits (B, A), rpn_deltas (B, A, 4), anchors (A, 4))`` -> proposals ``(B, count, 4)``.

    The ``pre_nms_limit`` best-scored anchors are moved by their deltas, clipped to the tile and
    thinned by non-maximum suppression at ``nms_threshold``; missing proposals are zero boxes.
    """

    def __init__(self, count: int, pre_nms_limit: int, nms_threshold: float, **kwargs):
        super().__init__(**kwargs)
        self.count, self.pre_nms_limit, self.nms_threshold = count, pre_nms_limit, nms_threshold
        self.supports_jit = False  # NMS has data-dependent shapes
        self.built = True

    def call(self, logits, deltas, anchors):
        """Proposals ``(B, count, 4)``, best first (no gradient flows through them)."""
        scores = tf.sigmoid(tf.cast(logits, tf.float32))
        k = tf.minimum(self.pre_nms_limit, tf.shape(scores)[1])
        top, index = tf.math.top_k(scores, k=k, sorted=True)
        chosen = tf.gather(tf.cast(deltas, tf.float32), index, batch_dims=1)
        boxes = bx.clip(bx.decode(chosen, tf.gather(anchors, index)))
        proposals, _, _, _ = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], top[:, :, None], self.count, self.count,
            iou_threshold=self.nms_threshold, clip_boxes=False)
        return tf.stop_gradient(proposals)

    def compute_output_shape(self, logits_shape, deltas_shape=None, anchors_shape=None):
        return (logits_shape[0], self.count, 4)

    def get_config(self):
        return {**super().get_config(), "count": self.count, "pre_nms_limit": self.pre_nms_limit,
                "nms_threshold": self.nms_threshold}

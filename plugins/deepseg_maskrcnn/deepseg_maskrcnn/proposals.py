"""Proposal layer: decode the RPN outputs on the anchors, keep the best, suppress overlaps."""

from __future__ import annotations

import keras
from keras import ops

from . import boxes as bx
from .nms import first_kept, native_nms, suppress


@keras.saving.register_keras_serializable(package="deepseg_maskrcnn")
class ProposalLayer(keras.layers.Layer):
    """``(rpn_logits (B, A), rpn_deltas (B, A, 4), anchors (A, 4))`` -> proposals ``(B, count, 4)``.

    The ``pre_nms_limit`` best-scored anchors are moved by their deltas, clipped to the tile and
    thinned by non-maximum suppression at ``nms_threshold``; missing proposals are zero boxes.
    """

    def __init__(self, count: int, pre_nms_limit: int, nms_threshold: float, **kwargs):
        super().__init__(**kwargs)
        self.count, self.pre_nms_limit, self.nms_threshold = count, pre_nms_limit, nms_threshold
        self.built = True

    def call(self, logits, deltas, anchors):
        """Proposals ``(B, count, 4)``, best first (no gradient flows through them)."""
        logits = ops.stop_gradient(ops.cast(logits, "float32"))
        deltas = ops.stop_gradient(ops.cast(deltas, "float32"))
        anchors = ops.convert_to_tensor(anchors, "float32")
        top, index = ops.top_k(ops.sigmoid(logits), k=min(self.pre_nms_limit, anchors.shape[0]))
        boxes = bx.clip(bx.decode(bx.batch_gather(deltas, index), ops.take(anchors, index, 0)))
        if native_nms():
            from .nms_tf import proposals

            return ops.stop_gradient(proposals(boxes, top, self.count, self.nms_threshold))
        kept = suppress(boxes, ops.ones_like(top, dtype="bool"), self.nms_threshold)
        slot, filled = first_kept(kept, self.count)
        proposals = bx.batch_gather(boxes, slot) * ops.cast(ops.expand_dims(filled, -1),
                                                             "float32")
        return ops.stop_gradient(proposals)

    def compute_output_shape(self, logits_shape, deltas_shape=None, anchors_shape=None):
        return (logits_shape[0], self.count, 4)

    def get_config(self):
        return {**super().get_config(), "count": self.count, "pre_nms_limit": self.pre_nms_limit,
                "nms_threshold": self.nms_threshold}

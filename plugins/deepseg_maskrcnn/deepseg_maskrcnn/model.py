"""The Mask R-CNN keras.Model: inference in ``call``, the five losses in ``train_step``."""

from __future__ import annotations

import json

import h5py
import keras
from keras import ops

from . import losses as ls
from . import steps
from .anchors import pyramid_anchors
from .config import DEFAULTS
from .detection import DetectionLayer
from .fpn import feature_model
from .heads import box_head, mask_head
from .proposals import ProposalLayer
from .roialign import PyramidROIAlign
from .targets import DetectionTargetLayer, rpn_targets
from .weights import CONFIG_ATTR

LOSSES = ("rpn_class_loss", "rpn_box_loss", "class_loss", "box_loss", "mask_loss")


@keras.saving.register_keras_serializable(package="deepseg_maskrcnn")
class MaskRCNN(keras.Model):
    """Mask R-CNN (He et al. 2017) with an FPN backbone for ``nbands``-band tiles.

    ``call(images)`` returns a dict of detections: ``boxes (B, D, 4)`` in pixels (row0, col0,
    row1, col1), ``scores``, ``class_ids`` (0 = none), ``masks (B, D, m, m)`` probabilities in
    each box and ``count (B,)``. ``fit`` takes ``(images, targets)`` from ``prepare_batch``.
    """

    def __init__(self, nbands: int, nclasses: int, params: dict, **kwargs):
        super().__init__(**kwargs)
        p = {**DEFAULTS, **params}  # models saved before a parameter existed take its default
        self.nbands, self.nclasses, self.config_params = int(nbands), int(nclasses), p
        channels = p["fpn_channels"]
        self.feature_net = feature_model(nbands, p)
        self.box_head = box_head(p["pool_size"], channels, p["head_fc"], nclasses)
        self.mask_head = mask_head(p["mask_pool_size"], channels, p["mask_channels"], nclasses)
        nms = (p["pre_nms_limit"], p["rpn_nms_threshold"])
        self.train_proposals = ProposalLayer(p["proposals_train"], *nms, name="train_proposals")
        self.infer_proposals = ProposalLayer(p["proposals_infer"], *nms, name="infer_proposals")
        self.target_layer = DetectionTargetLayer(p["rois_per_image"], p["roi_positive_fraction"],
                                                 p["mask_shape"], name="detection_targets")
        self.roi_align = PyramidROIAlign(p["pool_size"], p["canonical_size"], name="roi_align")
        self.mask_align = PyramidROIAlign(p["mask_pool_size"], p["canonical_size"],
                                          name="mask_roi_align")
        self.detection = DetectionLayer(p["max_instances"], p["detection_min_confidence"],
                                        p["detection_nms_threshold"], name="detection")
        self.trackers = [keras.metrics.Mean(name=n) for n in ("loss", *LOSSES)]
        self.built = True
        self._detect_fns: dict = {}

    @property
    def metrics(self):
        """The loss trackers (reset by keras at each epoch)."""
        return list(self.trackers)

    def _pyramid(self, images, training):
        outputs = self.feature_net(images, training=training)
        p = self.config_params
        height, width = steps.tile_size(images)
        anchors = pyramid_anchors(height, width, p["anchor_scales"], p["anchor_ratios"],
                                  p["anchor_octaves"])
        return outputs[:5], outputs[5], outputs[6], anchors

    def _heads(self, rois, images, pyramid, training):
        pooled = self.roi_align(rois, images, pyramid[:4])
        size, channels = self.config_params["pool_size"], self.config_params["fpn_channels"]
        logits, deltas = self.box_head(ops.reshape(pooled, (-1, size, size, channels)),
                                       training=training)
        count = rois.shape[1]
        return (ops.reshape(logits, (-1, count, self.nclasses)),
                ops.reshape(deltas, (-1, count, self.nclasses, 4)))

    def _masks(self, rois, images, pyramid, training):
        pooled = self.mask_align(rois, images, pyramid[:4])
        size, channels = self.config_params["mask_pool_size"], self.config_params["fpn_channels"]
        logits = self.mask_head(ops.reshape(pooled, (-1, size, size, channels)), training=training)
        m = 2 * size
        return ops.reshape(logits, (-1, rois.shape[1], m, m, self.nclasses))

    def call(self, images, training=False):
        """Detections of a batch of tiles (inference, whatever ``training`` says)."""
        images = ops.cast(images, "float32")
        pyramid, rpn_logits, rpn_deltas, anchors = self._pyramid(images, False)
        proposals = self.infer_proposals(rpn_logits, rpn_deltas, anchors)
        logits, deltas = self._heads(proposals, images, pyramid, False)
        boxes, scores, class_ids, count = self.detection(proposals, ops.softmax(logits), deltas)
        mask_logits = self._masks(boxes, images, pyramid, False)
        own = ls.own_class(ops.cast(mask_logits, "float32"), class_ids, 4)
        height, width = steps.tile_size(images)
        size = ops.convert_to_tensor([height, width, height, width], "float32")
        return {"boxes": boxes * size, "scores": scores, "class_ids": class_ids,
                "masks": ops.sigmoid(own), "count": count}

    def detect(self, images) -> dict:
        """``call`` on a batch of tiles as numpy arrays, through one compiled function per tile
        size (TensorFlow: a graph whatever the batch size, so the float rounding does not depend
        on the batches seen before and a saved and reloaded model predicts identically)."""
        return steps.detect(self, images)

    def compute_losses(self, images, targets, training=True):
        """The five losses (dict of scalars) of a batch of images and their targets."""
        images = ops.cast(images, "float32")
        p = self.config_params
        pyramid, rpn_logits, rpn_deltas, anchors = self._pyramid(images, training)
        height, width = steps.tile_size(images)
        size = ops.convert_to_tensor([height, width, height, width], "float32")
        gt_boxes = ops.cast(targets["gt_boxes"], "float32") / size
        gt_classes = ops.cast(targets["gt_class_ids"], "int32")
        step = steps.sampling_step(self)
        labels, anchor_deltas = rpn_targets(anchors, gt_boxes, gt_classes > 0,
                                            p["rpn_train_anchors"], p["rpn_positive_fraction"],
                                            p["rpn_positive_iou"], p["rpn_negative_iou"], step)
        proposals = self.train_proposals(rpn_logits, rpn_deltas, anchors)
        rois, classes, roi_deltas, sampled, masks = self.target_layer(
            proposals, gt_boxes, gt_classes, targets["gt_instances"], step=step)
        logits, deltas = self._heads(rois, images, pyramid, training)
        npos = self.target_layer.positives
        mask_logits = self._masks(rois[:, :npos], images, pyramid, training)
        return {"rpn_class_loss": ls.rpn_class_loss(labels, rpn_logits),
                "rpn_box_loss": ls.rpn_box_loss(labels, anchor_deltas, rpn_deltas),
                "class_loss": ls.class_loss(classes, sampled, logits),
                "box_loss": ls.box_loss(classes, roi_deltas, deltas),
                "mask_loss": ls.mask_loss(classes[:, :npos], masks, mask_logits)}

    def record(self, losses):
        """Update the loss trackers; their running means by name."""
        total = sum(losses.values())
        self.trackers[0].update_state(total)
        for tracker, name in zip(self.trackers[1:], LOSSES):
            tracker.update_state(losses[name])
        return {t.name: t.result() for t in self.trackers}

    def train_step(self, *args):
        """One optimizer step on ``(images, targets)``; the running mean losses (TensorFlow:
        ``(data)``; JAX: ``(state, data)`` -> ``(logs, state)``, as each Keras trainer calls)."""
        return steps.train_step(self, *args)

    def test_step(self, *args):
        """The losses of ``(images, targets)`` with batch normalization in inference mode."""
        return steps.test_step(self, *args)

    def save_weights(self, filepath, overwrite=True, **kwargs):
        """Keras' weights file, plus this model's config so it can be loaded by layer name."""
        super().save_weights(filepath, overwrite=overwrite, **kwargs)
        with h5py.File(str(filepath), "a") as f:
            f.attrs[CONFIG_ATTR] = json.dumps(self.get_config())

    def get_config(self):
        """Constructor arguments (the weights files are not re-read on loading)."""
        # the weights are in the saved file: neither file is read again on loading
        params = {**self.config_params, "weights": None, "backbone_weights": None}
        return {"name": self.name, "trainable": self.trainable, "nbands": self.nbands,
                "nclasses": self.nclasses, "params": params}

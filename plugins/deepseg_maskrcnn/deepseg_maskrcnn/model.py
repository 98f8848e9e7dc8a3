"""The Mask R-CNN keras.Model: inference in ``call``, the five losses in ``train_step``."""

from __future__ import annotations

import json

import h5py
import keras
import tensorflow as tf

from . import losses as ls
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
        self.supports_jit = False  # NMS and sampling have data-dependent shapes
        self.built = True
        self._detect_fn = None

    @property
    def metrics(self):
        """The loss trackers (reset by keras at each epoch)."""
        return list(self.trackers)

    def _pyramid(self, images, training):
        outputs = self.feature_net(images, training=training)
        pyramid = outputs[:5]
        p = self.config_params
        anchors = pyramid_anchors(images, pyramid, p["anchor_scales"], p["anchor_ratios"],
                                  p["anchor_octaves"])
        return pyramid, outputs[5], outputs[6], anchors

    def _heads(self, rois, images, pyramid, training):
        pooled = self.roi_align(rois, images, pyramid[:4])
        size, channels = self.config_params["pool_size"], self.config_params["fpn_channels"]
        logits, deltas = self.box_head(tf.reshape(pooled, (-1, size, size, channels)),
                                       training=training)
        shape = tf.shape(rois)[:2]
        return (tf.reshape(logits, tf.concat([shape, [self.nclasses]], 0)),
                tf.reshape(deltas, tf.concat([shape, [self.nclasses, 4]], 0)))

    def _masks(self, rois, images, pyramid, training):
        pooled = self.mask_align(rois, images, pyramid[:4])
        size, channels = self.config_params["mask_pool_size"], self.config_params["fpn_channels"]
        logits = self.mask_head(tf.reshape(pooled, (-1, size, size, channels)), training=training)
        m = 2 * size
        return tf.reshape(logits, tf.concat([tf.shape(rois)[:2], [m, m, self.nclasses]], 0))

    def call(self, images, training=False):
        """Detections of a batch of tiles (inference, whatever ``training`` says)."""
        images = tf.cast(images, tf.float32)
        pyramid, rpn_logits, rpn_deltas, anchors = self._pyramid(images, False)
        proposals = self.infer_proposals(rpn_logits, rpn_deltas, anchors)
        logits, deltas = self._heads(proposals, images, pyramid, False)
        boxes, scores, class_ids, count = self.detection(proposals, tf.nn.softmax(logits), deltas)
        mask_logits = self._masks(boxes, images, pyramid, False)
        own = tf.gather(tf.transpose(mask_logits, (0, 1, 4, 2, 3)), class_ids, batch_dims=2)
        size = tf.cast(tf.shape(images)[1:3], tf.float32)
        return {"boxes": boxes * tf.tile(size, [2]), "scores": scores, "class_ids": class_ids,
                "masks": tf.sigmoid(own), "count": count}

    def detect(self, images) -> dict:
        """``call`` on a batch of tiles as numpy arrays, through one graph for all batch shapes.

        The fixed input signature keeps the computation (hence the float rounding) the same
        whichever batch shapes came before, so a saved and reloaded model predicts identically.
        """
        if self._detect_fn is None:
            spec = tf.TensorSpec((None, None, None, self.nbands), tf.float32)
            self._detect_fn = tf.function(lambda x: self.call(x, training=False),
                                          input_signature=[spec], jit_compile=False,
                                          autograph=False)
        outputs = self._detect_fn(tf.convert_to_tensor(images, tf.float32))
        return {key: value.numpy() for key, value in outputs.items()}

    def compute_losses(self, images, targets, training=True):
        """The five losses (dict of scalars) of a batch of images and their targets."""
        images = tf.cast(images, tf.float32)
        p = self.config_params
        pyramid, rpn_logits, rpn_deltas, anchors = self._pyramid(images, training)
        size = tf.tile(tf.cast(tf.shape(images)[1:3], tf.float32), [2])
        gt_boxes = tf.cast(targets["gt_boxes"], tf.float32) / size
        gt_classes = tf.cast(targets["gt_class_ids"], tf.int32)
        labels, anchor_deltas = rpn_targets(anchors, gt_boxes, gt_classes > 0,
                                            p["rpn_train_anchors"], p["rpn_positive_fraction"],
                                            p["rpn_positive_iou"], p["rpn_negative_iou"])
        proposals = self.train_proposals(rpn_logits, rpn_deltas, anchors)
        rois, classes, roi_deltas, sampled, masks = self.target_layer(
            proposals, gt_boxes, gt_classes, targets["gt_instances"])
        logits, deltas = self._heads(rois, images, pyramid, training)
        npos = self.target_layer.positives
        mask_logits = self._masks(rois[:, :npos], images, pyramid, training)
        return {"rpn_class_loss": ls.rpn_class_loss(labels, rpn_logits),
                "rpn_box_loss": ls.rpn_box_loss(labels, anchor_deltas, rpn_deltas),
                "class_loss": ls.class_loss(classes, sampled, logits),
                "box_loss": ls.box_loss(classes, roi_deltas, deltas),
                "mask_loss": ls.mask_loss(classes[:, :npos], masks, mask_logits)}

    def _record(self, losses):
        total = tf.add_n(list(losses.values()))
        self.trackers[0].update_state(total)
        for tracker, name in zip(self.trackers[1:], LOSSES):
            tracker.update_state(losses[name])
        return {t.name: t.result() for t in self.trackers}

    def train_step(self, data):
        """One optimizer step on ``(images, targets)``; the running mean losses."""
        images, targets = data[0], data[1]
        with tf.GradientTape() as tape:
            losses = self.compute_losses(images, targets, training=True)
            total = tf.add_n(list(losses.values()))
        variables = self.trainable_variables
        grads = tape.gradient(total, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self._record(losses)

    def test_step(self, data):
        """The losses of ``(images, targets)`` with batch normalization in inference mode."""
        return self._record(self.compute_losses(data[0], data[1], training=False))

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

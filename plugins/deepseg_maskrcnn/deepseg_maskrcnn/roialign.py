"""Pyramid ROIAlign: bilinear pooling of each region from the pyramid level of its size."""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def crop_regions(image, boxes, box_indices, crop: int, method: str = "bilinear"):
    """``crop x crop`` samples at the bin centres of normalized ``boxes`` (edge coordinates).

    ``tf.image.crop_and_resize`` places the first/last sample on the box corners in pixel-centre
    coordinates; the boxes are moved so that samples fall at the centres of the ``crop`` bins
    (ROIAlign without the half-pixel misalignment).
    """
    shape = tf.cast(tf.shape(image)[1:3], tf.float32)
    rows, cols = shape[0], shape[1]
    y1, x1, y2, x2 = (boxes[:, i] for i in range(4))
    half_y = 0.5 * (y2 - y1) * rows / crop
    half_x = 0.5 * (x2 - x1) * cols / crop
    sample = tf.stack([(y1 * rows + half_y - 0.5) / tf.maximum(rows - 1.0, 1.0),
                       (x1 * cols + half_x - 0.5) / tf.maximum(cols - 1.0, 1.0),
                       (y2 * rows - half_y - 0.5) / tf.maximum(rows - 1.0, 1.0),
                       (x2 * cols - half_x - 0.5) / tf.maximum(cols - 1.0, 1.0)], axis=1)
    return tf.image.crop_and_resize(image, sample, box_indices, (crop, crop), method=method)


def roi_levels(rois, image_shape, canonical_size: float):
    """Pyramid level (2..5) of each ROI: ``floor(4 + log2(sqrt(area_px) / canonical_size))``."""
    rows, cols = tf.cast(image_shape[0], tf.float32), tf.cast(image_shape[1], tf.float32)
    side = tf.sqrt(tf.maximum((rois[..., 2] - rois[..., 0]) * rows
                              * (rois[..., 3] - rois[..., 1]) * cols, 1e-6))
    level = tf.floor(4.0 + tf.math.log(side / canonical_size) / math.log(2.0))
    return tf.cast(tf.clip_by_value(level, 2.0, 5.0), tf.int32)


@keras.saving.register_keras_serializable(package="deepseg_maskrcnn")
class PyramidROIAlign(keras.layers.Layer):
    """``(rois (B, R, 4), image, [P2..P5])`` -> pooled features ``(B, R, size, size, C)``.

    Each bin averages 2 x 2 bilinear samples of the level chosen by :func:`roi_levels`.
    """

    def __init__(self, pool_size: int, canonical_size: float = 224.0, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.canonical_size = pool_size, canonical_size
        self.supports_jit = False  # per-level gathers have data-dependent shapes
        self.built = True

    def call(self, rois, image, pyramid):
        """Pooled features ``(B, R, size, size, C)`` of the ROIs, in ROI order."""
        rois = tf.cast(rois, tf.float32)
        level = roi_levels(rois, tf.shape(image)[1:3], self.canonical_size)
        pooled, where = [], []
        for lv, feature in enumerate(pyramid, start=2):
            index = tf.where(tf.equal(level, lv))
            crops = crop_regions(tf.cast(feature, tf.float32), tf.gather_nd(rois, index),
                                 tf.cast(index[:, 0], tf.int32), 2 * self.pool_size)
            pooled.append(tf.nn.avg_pool2d(crops, 2, 2, "VALID"))
            where.append(index)
        shape = tf.concat([tf.shape(rois, out_type=tf.int64)[:2],
                           [self.pool_size, self.pool_size],
                           tf.shape(pyramid[0], out_type=tf.int64)[3:]], axis=0)
        return tf.scatter_nd(tf.concat(where, 0), tf.concat(pooled, 0), shape)

    def compute_output_shape(self, rois_shape, image_shape=None, pyramid_shapes=None):
        channels = pyramid_shapes[0][-1] if pyramid_shapes else None
        return (*rois_shape[:2], self.pool_size, self.pool_size, channels)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size,
                "canonical_size": self.canonical_size}

"""ROIAlign's TensorFlow kernel: ``tf.image.crop_and_resize`` on the ROIs of each pyramid level
(TensorFlow takes the per-level gathers' data-dependent shapes). The same samples as
:func:`.roialign.sample` (test_maskrcnn_backends.py compares them), 3-7x faster on CPU than
TensorFlow's run of that portable gather; JAX runs the portable one."""

from __future__ import annotations

import tensorflow as tf


def crop_regions(image, boxes, box_indices, crop: int, method: str = "bilinear"):
    """``crop x crop`` samples at the bin centres of normalized ``boxes (N, 4)`` (edge
    coordinates) of ``image``'s items ``box_indices``.

    ``crop_and_resize`` places the first/last sample on the box corners in pixel-centre
    coordinates; the boxes are moved so that samples fall at the centres of the ``crop`` bins.
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


def batch_crops(image, boxes, crop: int, method: str):
    """``(B, R, crop, crop, C)`` crops of ``image (B, H, W, C)`` at ``boxes (B, R, 4)``."""
    shape = tf.shape(boxes)
    index = tf.repeat(tf.range(shape[0]), shape[1])
    crops = crop_regions(image, tf.reshape(boxes, (-1, 4)), index, crop, method)
    return tf.reshape(crops, tf.concat([shape[:2], tf.shape(crops)[1:]], 0))


def pyramid_crops(rois, level, pyramid, pool_size: int):
    """Pooled ``(B, R, pool, pool, C)``: each ROI's 2x2-sampled bins from pyramid level
    ``level (B, R)`` (0 for P2)."""
    pooled, where = [], []
    for lv, feature in enumerate(pyramid):
        index = tf.where(tf.equal(level, lv))
        crops = crop_regions(tf.cast(feature, tf.float32), tf.gather_nd(rois, index),
                             tf.cast(index[:, 0], tf.int32), 2 * pool_size)
        pooled.append(tf.nn.avg_pool2d(crops, 2, 2, "VALID"))
        where.append(index)
    shape = tf.concat([tf.shape(rois, out_type=tf.int64)[:2], [pool_size, pool_size],
                       tf.shape(pyramid[0], out_type=tf.int64)[3:]], axis=0)
    return tf.scatter_nd(tf.concat(where, 0), tf.concat(pooled, 0), shape)

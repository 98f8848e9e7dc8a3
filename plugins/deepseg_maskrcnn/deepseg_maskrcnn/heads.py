"""Box/class head (two fully connected layers) and mask head (four 3x3 convs, 2x deconv)."""

from __future__ import annotations

import keras
from keras import layers


def box_head(pool_size: int, channels: int, fc: int, nclasses: int) -> keras.Model:
    """Pooled ROIs ``(N, p, p, C)`` -> class logits ``(N, K)``, per-class deltas ``(N, K, 4)``."""
    pooled = keras.Input((pool_size, pool_size, channels), name="pooled_rois")
    x = layers.Flatten(name="mrcnn_flatten")(pooled)
    x = layers.Dense(fc, activation="relu", kernel_initializer="he_normal",
                     name="mrcnn_class_fc1")(x)
    x = layers.Dense(fc, activation="relu", kernel_initializer="he_normal",
                     name="mrcnn_class_fc2")(x)
    logits = layers.Dense(nclasses, kernel_initializer=keras.initializers.RandomNormal(
        stddev=0.01), name="mrcnn_class_logits")(x)
    deltas = layers.Dense(4 * nclasses, kernel_initializer=keras.initializers.RandomNormal(
        stddev=0.001), name="mrcnn_bbox_fc")(x)
    deltas = layers.Reshape((nclasses, 4), name="mrcnn_bbox")(deltas)
    return keras.Model(pooled, [logits, deltas], name="box_head")


def mask_head(pool_size: int, channels: int, mask_channels: int, nclasses: int) -> keras.Model:
    """Pooled ROIs ``(N, p, p, C)`` -> per-class mask logits ``(N, 2p, 2p, K)``."""
    pooled = keras.Input((pool_size, pool_size, channels), name="pooled_masks")
    x = pooled
    for i in range(1, 5):
        x = layers.Conv2D(mask_channels, 3, padding="same", activation="relu",
                          kernel_initializer="he_normal", name=f"mrcnn_mask_conv{i}")(x)
    x = layers.Conv2DTranspose(mask_channels, 2, strides=2, activation="relu",
                               kernel_initializer="he_normal", name="mrcnn_mask_deconv")(x)
    logits = layers.Conv2D(nclasses, 1, name="mrcnn_mask")(x)
    return keras.Model(pooled, logits, name="mask_head")

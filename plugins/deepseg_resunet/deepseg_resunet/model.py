"""Residual U-Net (ResUNet, Zhang et al. 2018) with ResUNet-a style pre-activation blocks."""

from __future__ import annotations

import keras
from keras import layers

# moving statistics settle within the few hundred steps of small remote-sensing training
# sets (Keras' 0.99 needs thousands); 0.9 is PyTorch's default
BN_MOMENTUM = 0.9


def _bn_relu(x, name: str):
    """Batch normalization then ReLU (the pre-activation of a residual unit)."""
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _residual_block(x, filters: int, strides: int, name: str):
    """(BN-ReLU-conv3x3) twice plus an identity, or 1x1 projection, shortcut."""
    y = _bn_relu(x, f"{name}_a")
    # no biases: every sum feeds a batch normalization with its own offset
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_a_conv")(y)
    y = _bn_relu(y, f"{name}_b")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_b_conv")(y)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False,
                                 name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    return layers.Add(name=f"{name}_add")([shortcut, y])


def build_resunet(nbands: int, nclasses: int, filters: int = 32, depth: int = 4,
                  dropout: float = 0.0, encoder: str | None = None) -> keras.Model:
    """ResUNet from ``(rows, cols, nbands)`` tiles (sides divisible by 2^depth) to probabilities.

    With ``encoder`` (a Keras Applications backbone, e.g. resnet50) the encoding path is that
    network: the image and its features at strides 2..16 are the skips, its stride-32 output
    the bridge, so the decoder has 5 levels whatever ``depth`` says.
    """
    inputs = keras.Input((None, None, nbands), name="image")
    if encoder:
        from deepseg_core.models.encoders import ENCODER_DEPTH, encoder_features

        features = encoder_features(inputs, encoder)
        skips, x, depth = [inputs, *features[:-1]], features[-1], ENCODER_DEPTH
    else:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name="stem_conv")(inputs)
        x = _residual_block(x, filters, 1, "down0")
        skips = [x]
        for level in range(1, depth + 1):  # strided convolutions halve the size at each level
            x = _residual_block(x, filters * 2**level, 2, f"down{level}")
            skips.append(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="bridge_dropout")(x)
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2, name=f"up{level}_upsample")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([skips[level], x])
        x = _residual_block(x, filters * 2**level, 1, f"up{level}")
    x = _bn_relu(x, "head")
    x = layers.Conv2D(nclasses, 1, name="logits")(x)
    # float32 softmax so the probabilities stay sound under mixed precision
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="resunet")

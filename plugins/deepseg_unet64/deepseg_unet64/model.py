"""The classic U-Net (Ronneberger et al. 2015) with batch normalization, in Keras 3 layers."""

from __future__ import annotations

import keras
from keras import layers

# moving statistics settle within the few hundred steps of small remote-sensing training
# sets (Keras' 0.99 needs thousands); 0.9 is PyTorch's default
BN_MOMENTUM = 0.9


def _conv_block(x, filters: int, name: str):
    """Two 3x3 convolutions, each followed by batch normalization and ReLU."""
    for i in (1, 2):
        # no bias: the batch normalization that follows has its own offset
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def build_unet64(nbands: int, nclasses: int, filters: int = 64, depth: int = 4,
                 dropout: float = 0.0, encoder: str | None = None) -> keras.Model:
    """U-Net from ``(rows, cols, nbands)`` tiles (sides divisible by 2^depth) to probabilities.

    With ``encoder`` (a Keras Applications backbone, e.g. resnet50) the contracting path is
    that network: its features at strides 2..16 (and the image itself) are the skips, its
    stride-32 output the bottom, so the decoder has 5 levels whatever ``depth`` says.
    """
    inputs = keras.Input((None, None, nbands), name="image")
    if encoder:
        from deepseg_core.models.encoders import ENCODER_DEPTH, encoder_features

        features = encoder_features(inputs, encoder)
        skips, x, depth = [inputs, *features[:-1]], features[-1], ENCODER_DEPTH
    else:
        x, skips = inputs, []
        for level in range(depth):
            x = _conv_block(x, filters * 2**level, f"down{level}")
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
        x = _conv_block(x, filters * 2**depth, "bottom")
    if dropout > 0:  # as in the paper: dropout at the end of the contracting path
        x = layers.Dropout(dropout, name="bottom_dropout")(x)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(filters * 2**level, 2, strides=2, name=f"up{level}_deconv")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([skips[level], x])
        x = _conv_block(x, filters * 2**level, f"up{level}")
    x = layers.Conv2D(nclasses, 1, name="logits")(x)
    # float32 softmax so the probabilities stay sound under mixed precision
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="unet64")

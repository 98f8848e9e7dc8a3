"""ResNet (bottleneck, v1) backbone giving the C2..C5 feature maps of Mask R-CNN.

Layer names follow the usual Keras ResNet naming (``conv2_block1_1_conv`` ...), so a
user-supplied ResNet weights file can be loaded into the backbone by layer name.
"""

from __future__ import annotations

from keras import layers

from .config import BACKBONES

BN_EPSILON = 1.001e-5


def _bn(name: str, train_bn: bool):
    """Batch normalization over channels; frozen (inference mode) when ``train_bn`` is false."""
    bn = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=name)
    bn.trainable = train_bn
    return bn


def bottleneck(x, width: int, stride: int, shortcut_conv: bool, name: str, train_bn: bool):
    """1x1 (stride) -> 3x3 -> 1x1 (4 x width) residual block with an optional projection."""
    if shortcut_conv:
        shortcut = layers.Conv2D(4 * width, 1, strides=stride, kernel_initializer="he_normal",
                                 name=f"{name}_0_conv")(x)
        shortcut = _bn(f"{name}_0_bn", train_bn)(shortcut)
    else:
        shortcut = x
    y = layers.Conv2D(width, 1, strides=stride, kernel_initializer="he_normal",
                      name=f"{name}_1_conv")(x)
    y = _bn(f"{name}_1_bn", train_bn)(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = layers.Conv2D(width, 3, padding="same", kernel_initializer="he_normal",
                      name=f"{name}_2_conv")(y)
    y = _bn(f"{name}_2_bn", train_bn)(y)
    y = layers.Activation("relu", name=f"{name}_2_relu")(y)
    y = layers.Conv2D(4 * width, 1, kernel_initializer="he_normal", name=f"{name}_3_conv")(y)
    # zero-initialized last scale: each residual block starts as the identity (eases training)
    y = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, gamma_initializer="zeros",
                                  name=f"{name}_3_bn", trainable=train_bn)(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def resnet(image, backbone: str, train_bn: bool = True) -> list:
    """The C2..C5 feature maps (strides 4, 8, 16, 32) of ResNet ``backbone`` on ``image``."""
    blocks, width = BACKBONES[backbone]
    x = layers.ZeroPadding2D(3, name="conv1_pad")(image)
    x = layers.Conv2D(width, 7, strides=2, kernel_initializer="he_normal", name="conv1_conv")(x)
    x = _bn("conv1_bn", train_bn)(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    outputs = []
    for stage, count in enumerate(blocks):
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            x = bottleneck(x, width * 2**stage, stride, block == 0,
                           f"conv{stage + 2}_block{block + 1}", train_bn)
        outputs.append(x)
    return outputs

"""Feature pyramid network (P2..P6) on the backbone's C2..C5 maps, and the network's feature
model. Backbones: this plugin's ResNets (:mod:`.backbone`) or DeepSeg's encoders with weights
files (``efficientnet_lite0``, ``vgg16``: their features at strides 4..32, the input
normalization their weights expect included as their first layer)."""

from __future__ import annotations

import keras
from keras import layers

from deepseg_core.models.encoders import encoder_features

from .backbone import resnet
from .config import BACKBONES
from .rpn import rpn_head


def fpn(c_maps: list, channels: int) -> list:
    """P2..P6 from C2..C5: 1x1 laterals, nearest 2x top-down sums, 3x3 smoothing, P6 subsample."""
    c2, c3, c4, c5 = c_maps
    merged = [layers.Conv2D(channels, 1, name="fpn_c5p5")(c5)]
    for level, c in ((4, c4), (3, c3), (2, c2)):
        up = layers.UpSampling2D(2, interpolation="nearest", name=f"fpn_p{level + 1}upsampled")
        lateral = layers.Conv2D(channels, 1, name=f"fpn_c{level}p{level}")(c)
        merged.append(layers.Add(name=f"fpn_p{level}add")([up(merged[-1]), lateral]))
    p5, p4, p3, p2 = (layers.Conv2D(channels, 3, padding="same", name=f"fpn_p{level}")(m)
                      for level, m in zip((5, 4, 3, 2), merged))
    p6 = layers.MaxPooling2D(1, strides=2, padding="same", name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]


def backbone_maps(image, backbone: str, train_bn: bool) -> list:
    """C2..C5 (strides 4, 8, 16, 32) of ``backbone`` on ``image``. ``train_bn`` false freezes
    the backbone's batch normalization (inference mode, statistics kept) as for the ResNets:
    EfficientNet-Lite0's 48 batch norms; VGG16 has none."""
    if backbone in BACKBONES:
        return resnet(image, backbone, train_bn)
    c_maps = encoder_features(image, backbone)[1:]  # drop stride 2
    trunk = keras.Model(image, c_maps)  # only to list the encoder's layers
    for layer in trunk.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = train_bn
    return c_maps


def feature_model(nbands: int, params: dict) -> keras.Model:
    """Functional model: image -> [P2, P3, P4, P5, P6, rpn_logits (B, A), rpn_deltas (B, A, 4)]."""
    image = keras.Input((None, None, nbands), name="image")
    c_maps = backbone_maps(image, params["backbone"], params["train_bn"])
    pyramid = fpn(c_maps, params["fpn_channels"])
    logits, deltas = rpn_head(pyramid, len(params["anchor_ratios"]) * params["anchor_octaves"],
                              params.get("rpn_channels") or params["fpn_channels"])
    return keras.Model(image, [*pyramid, logits, deltas], name="features")

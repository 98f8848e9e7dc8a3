"""Writes a weights file in matterport Mask_RCNN's Keras 2 layout (``mask_rcnn_coco.h5``).

Layer names and shapes as matterport's ``mrcnn/model.py`` builds them (ResNet-FPN, RPN
``rpn_model``, heads as time-distributed convolutions with batch norms); the values are
random. The defaults are the published COCO file's: ResNet101, 81 classes, FPN 256, RPN 512,
1024-wide box head, 256-wide mask head, 3 anchors per location.
"""

from __future__ import annotations

import h5py
import numpy as np

BN = ("gamma", "beta", "moving_mean", "moving_variance")
BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}


def matterport_layers(blocks=BLOCKS["resnet101"], width=64, nclasses=81, bands=3, fpn=256,
                      rpn=512, fc=1024, mask=256, anchors=3, pool=7, seed=0) -> dict:
    """{layer: {weight name: array}}; the RPN's weights under the one layer ``rpn_model``."""
    rng = np.random.default_rng(seed)
    layers: dict[str, dict] = {}

    def conv(name, *shape, owner=None):
        group = layers.setdefault(owner or name, {})
        group[f"{name}/kernel:0"] = rng.normal(0, 0.05, shape).astype(np.float32)
        group[f"{name}/bias:0"] = rng.normal(0, 0.05, shape[-1:]).astype(np.float32)

    def bn(name, n):
        positive = ("gamma", "moving_variance")
        layers[name] = {f"{name}/{w}:0": (rng.uniform(0.5, 2, n) if w in positive
                                          else rng.normal(0, 0.1, n)).astype(np.float32)
                        for w in BN}

    conv("conv1", 7, 7, bands, width)
    bn("bn_conv1", width)
    cin = width
    for stage, count in enumerate(blocks, start=2):
        w = width * 2 ** (stage - 2)
        for b in range(count):
            block = f"{stage}{chr(ord('a') + b)}"
            conv(f"res{block}_branch2a", 1, 1, cin if b == 0 else 4 * w, w)
            bn(f"bn{block}_branch2a", w)
            conv(f"res{block}_branch2b", 3, 3, w, w)
            bn(f"bn{block}_branch2b", w)
            conv(f"res{block}_branch2c", 1, 1, w, 4 * w)
            bn(f"bn{block}_branch2c", 4 * w)
            if b == 0:
                conv(f"res{block}_branch1", 1, 1, cin, 4 * w)
                bn(f"bn{block}_branch1", 4 * w)
        cin = 4 * w
    for level in (5, 4, 3, 2):
        conv(f"fpn_c{level}p{level}", 1, 1, 4 * width * 2 ** (level - 2), fpn)
    for level in (2, 3, 4, 5):
        conv(f"fpn_p{level}", 3, 3, fpn, fpn)
    conv("rpn_conv_shared", 3, 3, fpn, rpn, owner="rpn_model")
    conv("rpn_class_raw", 1, 1, rpn, 2 * anchors, owner="rpn_model")
    conv("rpn_bbox_pred", 1, 1, rpn, 4 * anchors, owner="rpn_model")
    conv("mrcnn_class_conv1", pool, pool, fpn, fc)
    bn("mrcnn_class_bn1", fc)
    conv("mrcnn_class_conv2", 1, 1, fc, fc)
    bn("mrcnn_class_bn2", fc)
    conv("mrcnn_class_logits", fc, nclasses)
    conv("mrcnn_bbox_fc", fc, 4 * nclasses)
    for i in range(1, 5):
        conv(f"mrcnn_mask_conv{i}", 3, 3, fpn if i == 1 else mask, mask)
        bn(f"mrcnn_mask_bn{i}", mask)
    conv("mrcnn_mask_deconv", 2, 2, mask, mask)
    conv("mrcnn_mask", 1, 1, mask, nclasses)
    return layers


def write_matterport_h5(path, layers: dict) -> None:
    """The legacy Keras 2 weights layout: ``layer_names``, one group per layer with
    ``weight_names``, plus a few weightless layers as matterport's file lists them."""
    names = ["input_image", "zero_padding2d_1", *layers, "roi_align_classifier", "mrcnn_class"]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.0.8"
        for name in names:
            group = f.create_group(name)
            weights = layers.get(name, {})
            group.attrs["weight_names"] = [w.encode() for w in weights]
            for wname, value in weights.items():
                group.create_dataset(wname, data=value)

"""Parameters of the Mask R-CNN plugin: defaults and validation (no Keras import here)."""

from __future__ import annotations

import math
import numbers

from deepseg_core.errors import DeepSegError
from deepseg_core.models.encoders import FILE_ENCODERS, encoder_weights_file
from deepseg_core.models.pretrained import check_weights_path

#: ResNet variants: (blocks per stage C2..C5, bottleneck width of C2).
BACKBONES = {
    "resnet50": ((3, 4, 6, 3), 64),
    "resnet101": ((3, 4, 23, 3), 64),
    "resnet_tiny": ((1, 1, 1, 1), 16),
}
#: DeepSeg's encoders whose pretrained weights are a local file (``backbone_weights``):
#: their features at strides 4..32 (deepseg_core.models.encoders) are C2..C5.
FILE_BACKBONES = tuple(FILE_ENCODERS)

#: Pyramid levels P2..P6 and their strides in pixels.
STRIDES = (4, 8, 16, 32, 64)

DEFAULTS = {
    "backbone": "resnet50",
    "fpn_channels": 256,
    "rpn_channels": None,  # the RPN's shared 3x3 convolution (None: fpn_channels; matterport 512)
    "anchor_scales": [32, 64, 128, 256, 512],  # anchor side in pixels, one per level P2..P6
    "anchor_ratios": [0.5, 1.0, 2.0],  # width / height
    "anchor_octaves": 1,  # anchor sides per level: scale * 2**(k / octaves), k < octaves
    "rpn_train_anchors": 256,
    "rpn_positive_fraction": 0.5,
    "rpn_positive_iou": 0.7,  # anchors at least this IoU with a box are RPN positives
    "rpn_negative_iou": 0.3,  # anchors below this IoU with every box are RPN negatives
    "rpn_nms_threshold": 0.7,
    "pre_nms_limit": 6000,
    "proposals_train": 2000,
    "proposals_infer": 1000,
    "rois_per_image": 200,
    "roi_positive_fraction": 0.33,
    "pool_size": 7,
    "mask_pool_size": 14,
    "mask_shape": 28,
    "head_fc": 1024,
    "mask_channels": 256,
    "canonical_size": 224,  # box side (pixels) that ROIAlign assigns to P4
    "detection_min_confidence": 0.7,
    "detection_nms_threshold": 0.3,
    "max_instances": 300,
    "mask_threshold": 0.5,
    "train_bn": True,
    "weights": None,
    "backbone_weights": None,  # efficientnet_lite0 / vgg16: the path of their weights file
}

_COUNTS = ("fpn_channels", "rpn_train_anchors", "pre_nms_limit", "proposals_train",
           "proposals_infer", "rois_per_image", "pool_size", "mask_pool_size", "mask_shape",
           "head_fc", "mask_channels", "max_instances", "anchor_octaves")
_FRACTIONS = ("rpn_positive_fraction", "rpn_positive_iou", "rpn_negative_iou",
              "rpn_nms_threshold", "roi_positive_fraction", "detection_min_confidence",
              "detection_nms_threshold", "mask_threshold")


def _whole(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise DeepSegError(f"model parameter {name} must be a whole number >= 1, not {value!r}")
    return int(value)


def _fraction(name: str, value) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value)
            or not 0 < value <= 1):
        raise DeepSegError(f"model parameter {name} must be a number in (0, 1], not {value!r}")
    return float(value)


def _positives(name: str, value, length: int | None = None) -> list[float]:
    ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0 for v in value)
    if not ok or (length is not None and len(value) != length):
        size = f"{length} " if length else ""
        raise DeepSegError(f"model parameter {name} must be a list of {size}positive numbers, "
                           f"not {value!r}")
    return [float(v) for v in value]


def check_backbone_weights(backbone: str, weights) -> str | None:
    """The path ``backbone_weights`` names (``~`` expanded); DeepSegError naming the parameter
    for a ResNet backbone, ``imagenet`` (the file to fetch is named) or a missing file."""
    if weights is None:
        return None
    if backbone not in FILE_BACKBONES:
        raise DeepSegError(f"model parameter backbone_weights is for the backbones "
                           f"{', '.join(FILE_BACKBONES)}, not {backbone}: a ResNet weights file "
                           f"(e.g. Keras' ImageNet notop .h5) loads by layer name as weights")
    return encoder_weights_file(backbone, str(weights), "backbone_weights")


def merge_params(params: dict | None) -> dict:
    """Defaults overridden by ``params``; DeepSegError listing the known names on an unknown one."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise DeepSegError(f"model parameter(s) {', '.join(unknown)} unknown; "
                           f"expected some of: {', '.join(sorted(DEFAULTS))}")
    return {**DEFAULTS, **params}


def check_params(params: dict | None, tilesize: int, nbands: int, nclasses: int) -> dict:
    """The merged, checked parameters; DeepSegError naming the first bad one."""
    p = merge_params(params)
    if p["backbone"] not in BACKBONES and p["backbone"] not in FILE_BACKBONES:
        raise DeepSegError(f"model parameter backbone must be one of "
                           f"{', '.join([*BACKBONES, *FILE_BACKBONES])}, not {p['backbone']!r}")
    p["backbone_weights"] = check_backbone_weights(p["backbone"], p["backbone_weights"])
    for name in _COUNTS:
        p[name] = _whole(name, p[name])
    if p["rpn_channels"] is not None:
        p["rpn_channels"] = _whole("rpn_channels", p["rpn_channels"])
    for name in _FRACTIONS:
        p[name] = _fraction(name, p[name])
    p["anchor_scales"] = _positives("anchor_scales", p["anchor_scales"], len(STRIDES))
    p["anchor_ratios"] = _positives("anchor_ratios", p["anchor_ratios"])
    p["canonical_size"] = _positives("canonical_size", [p["canonical_size"]])[0]
    if not isinstance(p["train_bn"], bool):
        raise DeepSegError(f"model parameter train_bn must be true or false, not {p['train_bn']!r}")
    if p["mask_shape"] != 2 * p["mask_pool_size"]:
        raise DeepSegError(f"model parameter mask_shape must be twice mask_pool_size "
                           f"({2 * p['mask_pool_size']}), not {p['mask_shape']}")
    if p["rpn_negative_iou"] > p["rpn_positive_iou"]:
        raise DeepSegError(f"model parameter rpn_negative_iou ({p['rpn_negative_iou']}) must not "
                           f"exceed rpn_positive_iou ({p['rpn_positive_iou']})")
    if p["pre_nms_limit"] < p["proposals_train"] or p["pre_nms_limit"] < p["proposals_infer"]:
        raise DeepSegError(f"model parameter pre_nms_limit ({p['pre_nms_limit']}) must be at "
                           f"least proposals_train and proposals_infer")
    p["weights"] = check_weights_path(p["weights"])
    if isinstance(tilesize, bool) or not isinstance(tilesize, numbers.Integral) or tilesize < 64 \
            or tilesize % 32:
        raise DeepSegError(f"tilesize {tilesize!r} cannot be taken by Mask R-CNN: it must be a "
                           f"multiple of 32 (the C5 stride), at least 64")
    if isinstance(nbands, bool) or not isinstance(nbands, numbers.Integral) or nbands < 1:
        raise DeepSegError(f"nbands must be a whole number >= 1, not {nbands!r}")
    if isinstance(nclasses, bool) or not isinstance(nclasses, numbers.Integral) or nclasses < 2:
        raise DeepSegError(f"Mask R-CNN needs nclasses >= 2 (background and at least one "
                           f"object class), not {nclasses!r}")
    return p

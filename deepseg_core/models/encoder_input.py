"""The input an encoder's pretrained weights expect, made inside the model from DeepSeg's tiles.

DeepSeg feeds every model bands standardized by the store's statistics, ``z = (x - mean) /
std`` per band. Weights trained on 8-bit RGB photographs expect their own normalization of
pixel values, ``(x - centre) / scale``. The first layer of such an encoder takes the scene's
bands as having ImageNet's pixel statistics (``x = z * IMAGENET_STD + IMAGENET_MEAN``) and
applies the weights' normalization: one affine map per band, a built-in ``Normalization``
layer (so a saved model needs no custom objects). Bands past the third get the mean of the
three, as the first convolution gives them the mean of its three band kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: ImageNet pixel statistics (R, G, B) in 0..255 units
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _per_band(values: Sequence[float], nbands: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return np.array([array[b] if b < len(array) else array.mean() for b in range(nbands)])


def input_affine(centre: Sequence[float], scale: Sequence[float],
                 nbands: int) -> tuple[np.ndarray, np.ndarray]:
    """Per band ``(a, b)`` with ``a * z + b = (z * IMAGENET_STD + IMAGENET_MEAN - centre) /
    scale``: standardized bands to the values the weights were trained on."""
    mean, std = _per_band(IMAGENET_MEAN, nbands), _per_band(IMAGENET_STD, nbands)
    centre_b, scale_b = _per_band(centre, nbands), _per_band(scale, nbands)
    return std / scale_b, (mean - centre_b) / scale_b


def pretrained_input(inputs: Any, centre: Sequence[float], scale: Sequence[float],
                     name: str) -> Any:
    """``inputs`` (standardized bands) as the weights expect them: a Normalization layer."""
    from keras import layers

    a, b = input_affine(centre, scale, int(inputs.shape[-1]))
    # Normalization computes (z - m) / sqrt(v): m = -b / a and v = 1 / a^2 give a * z + b
    return layers.Normalization(mean=list(-b / a), variance=list(1 / a**2), name=name)(inputs)

"""Writes a Keras Applications weights file (legacy Keras 2 h5 layout) from a model's layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py

from deepseg_core.models.pretrained import own_variables

NAMES = {"Conv2D": ("kernel", "bias"),
         "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance")}


def write_keras_apps_h5(path: str | Path, model: Any) -> None:
    """``layer_names`` and one group per layer with ``weight_names``, as
    ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`` has them."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            values = own_variables(layer)
            names = [f"{layer.name}/{w}:0" for w in NAMES.get(type(layer).__name__, ())]
            group.attrs["weight_names"] = [n.encode() for n in names[:len(values)]]
            for name, value in zip(names, values):
                group.create_dataset(name, data=value)

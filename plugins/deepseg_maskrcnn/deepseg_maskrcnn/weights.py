"""Loading weights into a Mask R-CNN by layer name, skipping layers whose shapes differ.

Keras 3 weight stores address layers by position, not name, so the source is rebuilt first:
a ``.keras`` archive is loaded as a model; a ``.weights.h5`` saved by :class:`MaskRCNN`
carries its model config (attribute ``deepseg_maskrcnn_config``) to rebuild and fill the
source model. Legacy Keras ``.h5`` files (``layer_names``/``weight_names``, e.g. ResNet
ImageNet weights) are read by name directly. Other ``.weights.h5`` files fall back to
Keras' own positional loading with ``skip_mismatch``.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from deepseg_core.errors import DeepSegError

CONFIG_ATTR = "deepseg_maskrcnn_config"


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _legacy(root) -> dict:
    """{layer name: [arrays]} of a legacy Keras h5 group having a ``layer_names`` attribute."""
    found = {}
    for name in map(_text, root.attrs["layer_names"]):
        group = root[name]
        values = [np.asarray(group[_text(w)]) for w in group.attrs.get("weight_names", [])]
        if values:
            found[name] = values
    return found


def named_layers(model) -> dict:
    """{name: layer} of all layers inside ``model``, nested models included."""
    found, stack = {}, list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        found.setdefault(layer.name, layer)
        stack.extend(getattr(layer, "layers", []))
    return found


def _own(layer) -> list:
    """The layer's own variables (numpy) in its save order."""
    store: dict = {}
    layer.save_own_variables(store)
    return [np.asarray(store[str(i)]) for i in range(len(store))]


def _model_layers(model) -> dict:
    return {name: values for name, layer in named_layers(model).items()
            if (values := _own(layer))}


def read_weights(path: str) -> dict | None:
    """{layer name: arrays} stored in ``path``; None for a Keras 3 store without layer names."""
    import keras

    from .model import MaskRCNN

    try:
        if path.endswith(".keras"):
            return _model_layers(keras.saving.load_model(
                path, compile=False, custom_objects={"MaskRCNN": MaskRCNN}))
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs:
                return _legacy(f)
            if "model_weights" in f and "layer_names" in f["model_weights"].attrs:
                return _legacy(f["model_weights"])
            config = f.attrs.get(CONFIG_ATTR)
        if config is None:
            return None
        source = MaskRCNN.from_config(json.loads(_text(config)))
        source.load_weights(path)
        return _model_layers(source)
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise DeepSegError(f"model parameter weights: cannot read {path!r}: {error}") from None


def load_by_name(model, path: str) -> tuple[list[str], list[str]]:
    """Copy the weights of ``path`` into the same-named layers of ``model``.

    Returns (loaded layer names, skipped names: in both but with other variable shapes);
    raises DeepSegError when no layer of the file matches.
    """
    source = read_weights(path)
    if source is None:  # no names to go by: Keras' positional loading
        model.load_weights(path, skip_mismatch=True)
        return ["(by position)"], []
    loaded, skipped = [], []
    for name, layer in sorted(named_layers(model).items()):
        if name not in source or not (current := _own(layer)):
            continue
        values = source[name]
        if [v.shape for v in current] != [np.shape(v) for v in values]:
            skipped.append(name)
            continue
        layer.load_own_variables({str(i): v for i, v in enumerate(values)})
        loaded.append(name)
    if not loaded:
        raise DeepSegError(f"model parameter weights: no layer of {path!r} matches a Mask R-CNN "
                           f"layer by name and shape ({len(skipped)} differ in shape)")
    return loaded, skipped

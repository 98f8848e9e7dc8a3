"""Loading weights into a Mask R-CNN by layer name, skipping layers whose shapes differ.

Keras 3 weight stores address layers by position, not name, so the source is rebuilt first:
a ``.keras`` archive is loaded as a model; a ``.weights.h5`` saved by :class:`MaskRCNN`
carries its model config (attribute ``deepseg_maskrcnn_config``) to rebuild and fill the
source model. Legacy Keras ``.h5`` files (``layer_names``/``weight_names``, e.g. ResNet
ImageNet weights) are read by name directly. Other ``.weights.h5`` files fall back to
Keras' own positional loading with ``skip_mismatch``. A file in matterport's layout
(``mask_rcnn_coco.h5``) is translated first (:mod:`.matterport`).
"""

from __future__ import annotations

import json

import h5py

from deepseg_core.errors import DeepSegError
from deepseg_core.models.pretrained import (
    LoadReport,
    copy_named,
    legacy_layers,
    load_problem,
    model_layers,
)

CONFIG_ATTR = "deepseg_maskrcnn_config"


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_weights(path: str) -> dict | None:
    """{layer name: arrays} stored in ``path``; None for a Keras 3 store without layer names."""
    import keras

    from .model import MaskRCNN

    try:
        if path.endswith(".keras"):
            return model_layers(keras.saving.load_model(  # data: code in it is refused
                path, compile=False, safe_mode=True, custom_objects={"MaskRCNN": MaskRCNN}))
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs:
                return legacy_layers(f)
            if "model_weights" in f and "layer_names" in f["model_weights"].attrs:
                return legacy_layers(f["model_weights"])
            config = f.attrs.get(CONFIG_ATTR)
        if config is None:
            return None
        source = MaskRCNN.from_config(json.loads(_text(config)))
        source.load_weights(path)
        return model_layers(source)
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise DeepSegError(f"model parameter weights: cannot read {path!r}: "
                           f"{load_problem(error)}") from None


def load_by_name(model, path: str) -> LoadReport:
    """Copy the weights of ``path`` into the same-named layers of ``model``: the report.

    A first convolution with another band count is adapted; the class-sized heads are
    re-initialized when the file has another class count. DeepSegError when nothing matches.
    """
    from .backbone import BN_EPSILON
    from .matterport import CLASS_HEADS, is_matterport, translate

    source = read_weights(path)
    if source is None:  # no names to go by: Keras' positional loading
        model.load_weights(path, skip_mismatch=True)
        return LoadReport(path, loaded=["(all, by position)"])
    notes = []
    if is_matterport(source):
        source, notes = translate(source, BN_EPSILON)
    report = copy_named(model, source, path, model.nbands, LoadReport(path, notes=notes))
    report.skipped = [f"{line} (re-initialized for the model's {model.nclasses} classes)"
                      if line.split(":")[0] in CLASS_HEADS else line for line in report.skipped]
    if not report.loaded:
        raise DeepSegError(f"model parameter weights: no layer of {path!r} matches a Mask R-CNN "
                           f"layer by name and shape ({len(report.skipped)} differ in shape)")
    return report

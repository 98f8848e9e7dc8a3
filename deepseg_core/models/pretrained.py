"""Pretrained weights from local files, copied into a model layer by layer, matched by name.

``model: {weights: PATH}`` names a previous DeepSeg model (``best.keras``, e.g. trained on
another region) or a Keras weights file: a legacy Keras 2 ``.h5`` (attribute ``layer_names``,
one group per layer with ``weight_names``, the layout of Keras Applications and matterport
files) or a Keras 3 ``.weights.h5`` (which stores no layer names: loaded by position).

A layer whose variables have other shapes is skipped and said so, except the first
convolution when only its band count differs: its kernels are adapted the usual way (the
first bands copied, the mean of the file's band kernels for extra bands, all scaled by
file bands / model bands so the activations keep their size). Keras is imported lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from ..errors import DeepSegError

Arrays = dict[str, list[np.ndarray]]  # layer name -> its variables
KerasModel = Any  # a keras.Model (contracts.model's KerasModel, which imports this module)

log = logging.getLogger(__name__)

SUFFIXES = (".keras", ".h5")


def load_problem(error: BaseException) -> str:
    """Why a model file did not load, in the user's words: Keras' text for a file that holds
    code advises ``safe_mode=False``, which DeepSeg never passes (model files are data)."""
    text = str(error)
    if "safe_mode" in text:
        return ("it holds code (such as a Lambda layer), which DeepSeg does not run from a "
                "model file; see docs/crash-safety.md, 'Trust model'")
    return text


@overload
def check_weights_path(value: str | Path, key: str = ...) -> str: ...
@overload
def check_weights_path(value: None, key: str = ...) -> None: ...


def check_weights_path(value: object, key: str = "model parameter weights") -> str | None:
    """``value`` as an existing .keras/.h5 path (``~`` expanded); DeepSegError otherwise."""
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    if not str(path).endswith(SUFFIXES):
        raise DeepSegError(f"{key} must be a .keras, .weights.h5 or .h5 file, not {str(path)!r}")
    if not path.is_file():
        raise DeepSegError(f"{key}: file {str(path)!r} not found")
    return str(path)


@dataclass
class LoadReport:
    """What a load did, layer by layer."""

    path: str
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # one line per adapted layer
    skipped: list[str] = field(default_factory=list)  # "name: why"
    missing: list[str] = field(default_factory=list)  # model layers the file lacks
    unused: list[str] = field(default_factory=list)  # file layers the model lacks
    notes: list[str] = field(default_factory=list)  # conversions done on the file's side

    def lines(self) -> list[str]:
        """The report as printed: a summary line, then one line per kind."""
        out = [f"weights {self.path}: loaded {len(self.loaded)} layers, adapted "
               f"{len(self.adapted)}, skipped {len(self.skipped)}, {len(self.missing)} model "
               f"layers not in the file (left as initialized)"]
        out += [f"  note: {n}" for n in self.notes]
        if self.loaded:
            out.append(f"  loaded: {', '.join(self.loaded)}")
        out += [f"  adapted {a}" for a in self.adapted]
        out += [f"  skipped {s}" for s in self.skipped]
        if self.missing:
            out.append(f"  not in the file: {', '.join(self.missing)}")
        if self.unused:
            out.append(f"  in the file only: {', '.join(self.unused)}")
        return out


def _text(value: str | bytes) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def legacy_layers(root: Any) -> Arrays:  # an h5py File or Group
    """{layer name: arrays} of a legacy Keras h5 group with a ``layer_names`` attribute.

    A nested model is one group whose weight names carry the inner layers' names
    (``rpn_model`` holds ``rpn_conv_shared/kernel:0`` ...): those become their own layers.
    """
    found: Arrays = {}
    for name in map(_text, root.attrs["layer_names"]):
        group = root[name]
        for wname in map(_text, group.attrs.get("weight_names", [])):
            parts = wname.split("/")
            owner = parts[-2] if len(parts) > 1 else name
            found.setdefault(owner, []).append(np.asarray(group[wname]))
    return found


def named_layers(model: KerasModel) -> dict[str, Any]:
    """{name: layer} of all layers inside ``model``, nested models included."""
    found: dict[str, Any] = {}
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        found.setdefault(layer.name, layer)
        stack.extend(getattr(layer, "layers", []))
    return found


def own_variables(layer: Any) -> list[np.ndarray]:
    """The layer's own variables (numpy) in its save order."""
    store: dict[str, Any] = {}
    layer.save_own_variables(store)
    return [np.asarray(store[str(i)]) for i in range(len(store))]


def model_layers(model: KerasModel) -> Arrays:
    """{name: arrays} of every layer of ``model`` that has variables."""
    return {name: values for name, layer in named_layers(model).items()
            if (values := own_variables(layer))}


def read_named(path: str, custom_objects: dict[str, Any] | None = None) -> Arrays | None:
    """{layer name: arrays} stored in ``path``; None for a Keras 3 store without layer names."""
    import h5py

    try:
        if path.endswith(".keras"):
            import keras

            # a weights source is data: a layer that carries code is refused, not run
            return model_layers(keras.saving.load_model(path, compile=False, safe_mode=True,
                                                        custom_objects=custom_objects))
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs:
                return legacy_layers(f)
            if "model_weights" in f and "layer_names" in f["model_weights"].attrs:
                return legacy_layers(f["model_weights"])  # a whole legacy model (.h5)
        return None
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise DeepSegError(f"model parameter weights: cannot read {path!r}: "
                           f"{load_problem(error)}") from None


def adapt_bands(kernel: np.ndarray, nbands: int) -> np.ndarray:
    """A ``(kh, kw, b, out)`` kernel for ``nbands`` input bands: the first bands kept, extra
    bands given the mean band kernel, everything scaled by ``b / nbands``."""
    have = kernel.shape[2]
    keep = kernel[:, :, :min(have, nbands)]
    extra = np.repeat(kernel.mean(axis=2, keepdims=True), max(nbands - have, 0), axis=2)
    return (np.concatenate([keep, extra], axis=2) * (have / nbands)).astype(kernel.dtype)


def _shapes(values: Iterable[np.ndarray]) -> str:
    return ", ".join(str(tuple(np.shape(v))) for v in values)


def copy_named(model: KerasModel, source: Arrays, path: str, nbands: int | None = None,
               report: LoadReport | None = None) -> LoadReport:
    """Copy ``source`` ({name: arrays}) into the same-named layers of ``model``."""
    report = report or LoadReport(path)
    layers = named_layers(model)
    report.unused += sorted(set(source) - set(layers))
    for name, layer in layers.items():
        current = own_variables(layer)
        if not current:
            continue
        if name not in source:
            report.missing.append(name)
            continue
        values = [np.asarray(v) for v in source[name]]
        cur, new = [v.shape for v in current], [v.shape for v in values]
        if cur != new and nbands and len(cur) == len(new) and len(cur[0]) == 4 \
                and cur[0][2] == nbands and new[0][2] != nbands \
                and cur[0][:2] + cur[0][3:] == new[0][:2] + new[0][3:] and cur[1:] == new[1:]:
            have = new[0][2]
            values[0] = adapt_bands(values[0], nbands)
            how = ("the file's band kernels averaged into the extra bands" if nbands > have
                   else f"the first {nbands} band kernels kept")
            report.adapted.append(f"{name}: {have} bands in the file, {nbands} in the model "
                                  f"({how}, scaled by {have}/{nbands})")
        elif cur != new:
            report.skipped.append(f"{name}: shape {_shapes(values)} in the file, "
                                  f"{_shapes(current)} in the model")
            continue
        layer.load_own_variables({str(i): v.astype(c.dtype, copy=False)
                                  for i, (v, c) in enumerate(zip(values, current))})
        report.loaded.append(name)
    return report


def load_weights(model: KerasModel, path: str, nbands: int | None = None,
                 custom_objects: dict[str, Any] | None = None) -> LoadReport:
    """Load ``path`` into ``model`` by layer name (positional for a nameless Keras 3 file),
    report what was loaded (:func:`show`) and return the report."""
    source = read_named(path, custom_objects)
    if source is None:
        model.load_weights(path, skip_mismatch=True)
        report = LoadReport(path, loaded=["(all, by position)"], notes=[
            "a Keras 3 .weights.h5 stores no layer names: loaded by position, layers of "
            "other shapes skipped by Keras; use best.keras or a legacy .h5 to match by name"])
    else:
        report = copy_named(model, source, path, nbands)
        if not report.loaded:
            raise DeepSegError(f"model parameter weights: no layer of {path!r} matches a layer "
                               f"of the model by name and shape ({len(report.skipped)} by name "
                               f"only)")
    show(report)
    return report


def show(report: LoadReport) -> None:
    """Tell the user what a load did, line by line (deepseg_core.io.messages)."""
    for line in report.lines():
        log.info(line)

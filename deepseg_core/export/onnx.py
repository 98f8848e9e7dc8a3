"""The trained model to ONNX (and a TensorFlow SavedModel) through Keras' own ``model.export``.

The exported graph is the trained network with its input and output turned channels first
(what Deepness and most ONNX tools expect), at the experiment's tile size; the metadata is
deepseg_core.models.exported's. The file is written under a temporary name, run by
onnxruntime on random normalized tiles and compared with the Keras model (at most
``TOLERANCE`` apart), and only then renamed into place.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..contracts.model import SemanticModel
from ..errors import DeepSegError
from ..io.atomic import replacing, write_text
from ..models.exported import metadata

if TYPE_CHECKING:
    from ..models.folder import ModelInfo, TrainedModel
    from ..plugins.registry import Registry

TOLERANCE = 1e-4  # largest difference of a probability between the file and the Keras model
#: what Keras' ONNX export needs per backend (keras/src/export/onnx.py)
CONVERTERS = {"tensorflow": ["tf2onnx"], "jax": ["jax2onnx"], "torch": ["onnxscript"]}
EXTRA = "pip install 'deepseg-core[export]'"
INSTANCE = ("instance models cannot be exported: their instances (masks, boxes, scores) come "
            "from the plugin's Python post-processing (predict_tiles), which a graph does not "
            "hold; predict them with 'deepseg predict'")


def check_exportable(trained: TrainedModel, plugin: Any) -> None:
    """One line when the model is not a semantic model whose graph is its prediction."""
    if trained.info.segmentation_type != "semantic":
        raise DeepSegError(INSTANCE)
    if getattr(type(plugin), "predict_tiles", None) is not SemanticModel.predict_tiles:
        raise DeepSegError(f"model {trained.info.model!r} cannot be exported: its "
                           "predict_tiles adds Python steps to the network's output, which "
                           "the exported graph would not hold")


def check_packages(backend: str, formats: list[str]) -> None:
    """One line naming what is missing for ``formats`` on the Keras ``backend``."""
    needed = ["onnx", "onnxruntime", *CONVERTERS.get(backend, [])] if "onnx" in formats else []
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise DeepSegError(f"deepseg export --format onnx needs {', '.join(missing)} (Keras "
                           f"backend {backend}): {EXTRA}")
    if "savedmodel" in formats and backend not in ("tensorflow", "jax"):
        raise DeepSegError(f"a SavedModel is written by the tensorflow or jax Keras backend, "
                           f"not {backend}; set KERAS_BACKEND=tensorflow")


def channels_first(model: Any, nbands: int, tilesize: int) -> Any:
    """The network taking ``(batch, bands, T, T)`` and giving ``(batch, classes, T, T)``."""
    import keras

    image = keras.Input((nbands, tilesize, tilesize), name="image")
    x = keras.layers.Permute((2, 3, 1))(image)
    out = keras.layers.Permute((3, 1, 2), name="probabilities")(model(x))
    wrapper = keras.Model(image, out, name="deepseg_export")
    wrapper(np.zeros((1, nbands, tilesize, tilesize), "float32"))  # export needs a called model
    return wrapper


def export_onnx(wrapper: Any, info: ModelInfo, out: Path, opset: int | None = None) -> float:
    """Write ``out``; the largest difference measured between it and the Keras model."""
    import onnx

    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as work:
        raw = Path(work) / "raw.onnx"
        try:
            wrapper.export(str(raw), format="onnx", verbose=False, opset_version=opset)
        except Exception as exc:
            raise DeepSegError(f"{out}: Keras could not export the model to ONNX "
                               f"({' '.join(str(exc).split())[:300]})") from None
        proto = onnx.load(str(raw))
    _rename_output(proto, "probabilities")
    for key, value in metadata(info).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "deepseg"
    with replacing(out, "cannot write the exported model") as tmp:
        onnx.save(proto, str(tmp))
        difference = compare(tmp, wrapper, info)
    return difference


def _rename_output(proto: Any, name: str) -> None:
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    proto.graph.output[0].name = name


def compare(path: Path, wrapper: Any, info: ModelInfo, tiles: int = 2) -> float:
    """Run the file by onnxruntime and the Keras model on the same random normalized tiles:
    their largest difference, an error above ``TOLERANCE``."""
    import onnxruntime

    x = np.random.default_rng(0).standard_normal(
        (tiles, info.nbands, info.tilesize, info.tilesize)).astype("float32")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    expected = np.asarray(wrapper.predict_on_batch(x), dtype="float32")
    difference = float(np.max(np.abs(np.asarray(got) - expected)))
    if not difference <= TOLERANCE:
        raise DeepSegError(f"{path}: the exported model's probabilities differ from the "
                           f"Keras model's by {difference:.3g} (more than {TOLERANCE:g})")
    return difference


def export_savedmodel(wrapper: Any, info: ModelInfo, out: Path) -> Path:
    """Write the SavedModel folder ``out`` (with deepseg_metadata.json), replacing an older
    one only once the new one is complete."""
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    old = out.with_name(f".{out.name}.old")
    try:
        wrapper.export(str(work / "model"), format="tf_saved_model", verbose=False)
        meta = {k: json.loads(v) for k, v in metadata(info).items()}
        write_text(work / "model" / "deepseg_metadata.json", json.dumps(meta, indent=1))
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            os.replace(out, old)
        os.replace(work / "model", out)
    except OSError as exc:
        raise DeepSegError(f"{out}: cannot write the SavedModel ({exc.strerror})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out


def export_model(trained: TrainedModel, registry: Registry, onnx_path: Path,
                 formats: list[str], opset: int | None = None) -> dict[str, Any]:
    """Export the trained model; what was written (paths, measured difference)."""
    import keras

    check_packages(keras.backend.backend(), formats)
    plugin, model = trained.load(registry)
    check_exportable(trained, plugin)
    wrapper = channels_first(model, trained.info.nbands, trained.info.tilesize)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    done: dict[str, Any] = {}
    if "onnx" in formats:
        done["onnx"] = onnx_path
        done["difference"] = export_onnx(wrapper, trained.info, onnx_path, opset)
    if "savedmodel" in formats:
        folder = onnx_path.with_name(f"{onnx_path.stem}_savedmodel")
        done["savedmodel"] = export_savedmodel(wrapper, trained.info, folder)
    return done

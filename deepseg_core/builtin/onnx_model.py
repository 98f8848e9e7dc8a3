"""The built-in model plugin ``onnx``: predicts with a file ``deepseg export`` wrote, through
onnxruntime only (no TensorFlow, JAX or Keras), so a site without them can still map:

    model: {name: onnx, path: exports/trees.onnx}

The file carries the model.json of its training (deepseg_core.models.exported), checked against
the experiment's bands, classes and tile size. It predicts only: training it is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepseg_core import hookimpl
from deepseg_core.contracts.model import TileResult
from deepseg_core.errors import DeepSegError

if TYPE_CHECKING:
    from deepseg_core.contracts.model import Params, TrainSettings
    from deepseg_core.plugins.registry import Registry

NAME = "onnx"  # deepseg_core.models.exported.ONNX (imported lazily: `deepseg --help` is fast)
PREDICT_ONLY = ("model 'onnx' runs an exported model and cannot be trained: train a Keras "
                "model plugin and export it with 'deepseg export'")


class OnnxModel:
    """An exported semantic model run by onnxruntime (contracts.model.ModelPlugin)."""

    segmentation_type = "semantic"
    trainable = False  # predicts only

    def validate(self, nbands: int, nclasses: int, tilesize: int, params: Params) -> None:
        """``path`` names an exported file of these bands, classes and tile size."""
        unknown = sorted(set(params) - {"path"})
        if unknown:
            raise DeepSegError(f"model parameter(s) {', '.join(unknown)} unknown; model "
                               "'onnx' takes only 'path'")
        if not params.get("path"):
            raise DeepSegError("model 'onnx' needs 'path': the .onnx file 'deepseg export' "
                               "wrote")
        path = Path(str(params["path"]))
        from deepseg_core.models.exported import info_from_metadata, read_metadata

        info = info_from_metadata(read_metadata(path), path)
        if (info.nbands, len(info.classes), info.tilesize) != (nbands, nclasses, tilesize):
            raise DeepSegError(f"{path}: exported for nbands={info.nbands}, "
                               f"{len(info.classes)} classes and tilesize={info.tilesize}; the "
                               f"experiment has nbands={nbands}, {nclasses} classes and "
                               f"tilesize={tilesize}")

    def build(self, nbands: int, nclasses: int, tilesize: int, params: Params) -> Any:
        raise DeepSegError(PREDICT_ONLY)

    def compile(self, model: Any, settings: TrainSettings) -> None:
        raise DeepSegError(PREDICT_ONLY)

    def prepare_batch(self, images: np.ndarray, labels: np.ndarray,
                      instance_classes: Any = None, params: Params | None = None) -> Any:
        raise DeepSegError(PREDICT_ONLY)

    def load(self, path: str | Path, compile: bool = False) -> Any:
        """An onnxruntime session of the file (GPU providers first where installed)."""
        from deepseg_core.models.exported import NEEDS_ORT

        try:
            import onnxruntime
        except ImportError:
            raise DeepSegError(f"{path}: running an ONNX model needs onnxruntime: "
                               f"{NEEDS_ORT}") from None
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in onnxruntime.get_available_providers()]
        return onnxruntime.InferenceSession(str(path), providers=providers)

    def predict_tiles(self, model: Any, images: np.ndarray) -> list[TileResult]:
        """Normalized tiles ``(n, rows, cols, bands)`` through the graph (channels first)."""
        x = np.ascontiguousarray(np.moveaxis(images.astype("float32", copy=False), -1, 1))
        (probs,) = model.run(None, {model.get_inputs()[0].name: x})
        probs = np.moveaxis(np.asarray(probs, dtype="float32"), 1, -1)
        return [TileResult(probabilities=p) for p in probs]

    def custom_objects(self) -> dict[str, Any]:
        return {}


@hookimpl(tryfirst=True)  # built-ins register first: others may override
def deepseg_register_models(registry: Registry) -> None:
    registry.add_model(NAME, OnnxModel())


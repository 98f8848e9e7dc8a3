"""A trained model exported for other tools (``deepseg export``), and read back to predict.

The ONNX file is self-describing, in the keys QGIS's Deepness plugin reads (every value JSON,
as Deepness parses them): ``model_type`` 'Segmentor', ``class_names`` ``{id: name}``,
``resolution`` in cm per pixel (projected CRS only), ``tiles_size`` (and ``tile_size``, the key
Deepness's code reads), ``tiles_overlap`` in % of the tile, and ``standardization_mean`` /
``standardization_std``. The graph takes ``(batch, bands, tilesize, tilesize)`` float32 tiles
normalized as DeepSeg normalizes them, ``(x - mean) / std`` per band with the training
statistics, and gives ``(batch, classes, tilesize, tilesize)`` softmax probabilities. Deepness
feeds ``uint8 / 255`` and then standardizes, so its ``standardization_*`` are the statistics
divided by 255: exact for 8-bit imagery, the only kind Deepness reads. ``deepseg`` holds the
whole model.json (band names, colours, CRS, statistics), from which ``deepseg predict`` runs the
file with ``model: {name: onnx, path: model.onnx}`` (no TensorFlow or JAX needed: only
onnxruntime).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DeepSegError
from .folder import ModelInfo, TrainedModel, trained_model

if TYPE_CHECKING:
    from ..config.schema import Experiment

ONNX = "onnx"  # the built-in model plugin that runs exported files (builtin/onnx_model.py)
FORMAT = 1  # of the 'deepseg' metadata
LAYOUT = "NCHW"
NEEDS_ORT = "pip install 'deepseg-core[onnx]'"


def metadata(info: ModelInfo) -> dict[str, str]:
    """The metadata of an exported semantic model (keys: the module docstring)."""
    mean = np.asarray(info.stats["mean"], dtype=np.float64)
    std = np.asarray(info.stats["std"], dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    meta: dict[str, Any] = {
        "model_type": "Segmentor",
        "class_names": {str(i): name for i, name in enumerate(info.classes)},
        "tiles_size": info.tilesize, "tile_size": info.tilesize,
        "tiles_overlap": round(100 * info.overlap / info.tilesize),
        "standardization_mean": (mean / 255).tolist(),
        "standardization_std": (std / 255).tolist(),
        "deepseg": {"format": FORMAT, "layout": LAYOUT, "model": dataclasses.asdict(info),
                    "normalization": "(x - mean) / std per band (model.stats); nodata pixels 0"},
    }
    cm = resolution_cm(info.crs, info.resolution)
    if cm is not None:
        meta["resolution"] = cm
    return {key: json.dumps(value) for key, value in meta.items()}


def resolution_cm(crs: str | None, resolution: float | None) -> float | None:
    """The pixel size in cm, where the CRS has linear units (None for degrees or unknown)."""
    if not crs or not resolution:
        return None
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        _, factor = CRS.from_user_input(crs).linear_units_factor
    except (CRSError, ValueError):
        return None
    return round(resolution * factor * 100, 6)


def info_from_metadata(meta: Mapping[str, str], path: Path) -> ModelInfo:
    """The model.json that ``metadata`` stored, as the ONNX runner's: model 'onnx'."""
    try:
        stored = json.loads(meta["deepseg"])
        fields = {f.name for f in dataclasses.fields(ModelInfo)}
        info = ModelInfo(**{k: v for k, v in stored["model"].items() if k in fields})
    except (KeyError, TypeError, ValueError):
        raise DeepSegError(f"{path}: an ONNX file without DeepSeg's metadata (key 'deepseg'); "
                           "export the model with 'deepseg export'") from None
    if stored.get("layout") != LAYOUT or info.segmentation_type != "semantic":
        raise DeepSegError(f"{path}: DeepSeg metadata of format {stored.get('format')!r} this "
                           "deepseg cannot run; export the model again")
    return dataclasses.replace(info, model=ONNX, params={"path": str(path)})


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of the ONNX file at ``path`` (read by onnxruntime)."""
    try:
        import onnxruntime
    except ImportError:
        raise DeepSegError(f"{path}: running an ONNX model needs onnxruntime: "
                           f"{NEEDS_ORT}") from None
    if not Path(path).is_file():
        raise DeepSegError(f"{path}: ONNX model file not found")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's Fail/InvalidGraph: not an ONNX model
        raise DeepSegError(f"{path}: not an ONNX model onnxruntime can load "
                           f"({' '.join(str(exc).split())[:200]})") from None
    return dict(session.get_modelmeta().custom_metadata_map)


def exported_model(path: Path, nbands: int, classes: list[str], tilesize: int) -> TrainedModel:
    """The exported model at ``path`` as a TrainedModel, checked against the experiment."""
    info = info_from_metadata(read_metadata(path), path)
    if info.nbands != nbands or info.classes != list(classes) or info.tilesize != tilesize:
        raise DeepSegError(f"{path}: exported with nbands={info.nbands}, tilesize="
                           f"{info.tilesize} and classes {info.classes}; the experiment has "
                           f"nbands={nbands}, tilesize={tilesize} and classes {list(classes)}")
    return TrainedModel(info, Path(path))


def model_to_predict(exp: Experiment) -> TrainedModel:
    """The model ``deepseg predict`` runs: an exported file (model 'onnx'), else the trained
    model in the experiment's folder."""
    if exp.model.name == ONNX:
        path = exp.model.params.get("path")
        return exported_model(Path(str(path)), exp.nbands, exp.class_names, exp.tilesize)
    return trained_model(exp.outdir, exp.nbands, exp.class_names)

"""The model contract: what a model plugin provides to the train, crossval and predict stages.

The stages never assume one softmax output; they ask the plugin to validate its parameters,
build, compile, turn stored label tiles into training targets and turn a batch of image tiles
into per-tile results (:class:`TileResult`). Keras is imported inside methods only.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import DeepSegError

KerasModel = Any  # keras.Model (imported lazily) or a plugin's own model with ``load``
Params = dict[str, Any]  # model parameters: the experiment's ``model.params`` over defaults
InstanceClasses = list[dict[int, int]]  # per tile of a batch: the class of each instance id


def mask_extent(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(row0, col0, row1, col1), ends exclusive, of a bool mask's pixels; None if it has none."""
    rows = np.flatnonzero(np.any(mask, axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(np.any(mask, axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


@dataclass
class Instance:
    """One detected object inside a tile (tile pixel coordinates).

    ``mask`` covers the whole tile, or only a window of it whose top-left tile pixel is
    ``origin``: with hundreds of objects on a large tile, masks cut to their boxes keep a
    batch's results small (300 full masks of a 1024 px tile are 300 MiB).
    """

    class_id: int
    score: float
    mask: np.ndarray  # (rows, cols) bool: the tile, or the window at ``origin``
    box: tuple[int, int, int, int]  # row0, col0, row1, col1 (ends exclusive)
    origin: tuple[int, int] = (0, 0)  # tile row, col of mask[0, 0]

    def window(self) -> tuple[slice, slice]:
        """Where ``mask`` lies in the tile: ``tile[window()][mask]`` are the object's pixels."""
        r, c = (int(v) for v in self.origin)
        return slice(r, r + self.mask.shape[0]), slice(c, c + self.mask.shape[1])

    def extent(self) -> tuple[int, int, int, int] | None:
        """(row0, col0, row1, col1), ends exclusive, of the mask's pixels in the tile; or None."""
        box = mask_extent(self.mask)
        if box is None:
            return None
        r, c = (int(v) for v in self.origin)
        return box[0] + r, box[1] + c, box[2] + r, box[3] + c

    def full_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """The mask over a whole ``shape`` tile."""
        rows, cols = self.window()
        if min(rows.start, cols.start) < 0 or rows.stop > shape[0] or cols.stop > shape[1]:
            raise DeepSegError(f"instance mask {self.mask.shape} at {tuple(self.origin)} does "
                               f"not fit a {tuple(shape)} tile")
        full = np.zeros(shape, dtype=bool)
        full[rows, cols] = self.mask
        return full


@dataclass
class TileResult:
    """A model's prediction for one tile: class probabilities (semantic) or instances."""

    probabilities: np.ndarray | None = None  # (rows, cols, classes) float32
    instances: list[Instance] = field(default_factory=list)

    @property
    def classes(self) -> np.ndarray:
        """Most probable class per pixel (semantic results)."""
        if self.probabilities is None:  # an instance model's result
            raise DeepSegError("this tile result has no class probabilities")
        return np.argmax(self.probabilities, axis=-1)


@dataclass
class TrainSettings:
    """What compile() needs from the experiment."""

    nclasses: int
    learning_rate: float = 1e-3
    loss: str = "ce+dice"  # ce | dice | ce+dice
    class_weights: list[float] | None = None
    ignore_label: int | None = None
    optimizer: str = "adam"


class ModelPlugin(Protocol):
    """What ``registry.add_model(name, plugin)`` expects of ``plugin``."""

    segmentation_type: str  # "semantic" or "instance"

    def validate(self, nbands: int, nclasses: int, tilesize: int, params: Params) -> None:
        """Raise DeepSegError (naming the parameter) if the model cannot take these settings
        (the arguments of ``build``, in its order)."""

    def build(self, nbands: int, nclasses: int, tilesize: int, params: Params) -> KerasModel:
        """A new, uncompiled keras.Model for ``(tilesize, tilesize, nbands)`` tiles."""

    def compile(self, model: KerasModel, settings: TrainSettings) -> None:
        """Attach optimizer, losses and metrics (loss/accuracy/mean IoU for semantic models)."""

    def prepare_batch(self, images: np.ndarray, labels: np.ndarray,
                      instance_classes: InstanceClasses | None = None,
                      params: Params | None = None) -> tuple[Any, Any]:
        """``(x, y)`` for ``fit`` from normalized images ``(n, r, c, b)`` and stored labels;
        ``params`` are the experiment's model parameters, as ``build`` got them."""

    def predict_tiles(self, model: KerasModel, images: np.ndarray) -> list[TileResult]:
        """Predict normalized image tiles ``(n, r, c, b)``; one TileResult each."""

    def custom_objects(self) -> dict[str, Any]:
        """Objects keras needs to load a saved model of this plugin."""

    # Optional: ``load(path, compile=False)``, a saved model from its file, for models that
    # are no Keras models (else deepseg_core.models.folder.load_saved); ``backends``, the Keras
    # backends the model runs on, e.g. ("tensorflow",) (else all: models in keras.ops).


class SemanticModel(abc.ABC):
    """Base for semantic plugins: subclasses provide ``network()`` and ``defaults``.

    Every semantic model also takes ``weights``: a previous model (``best.keras``) or a Keras
    weights file loaded by layer name after building (:mod:`deepseg_core.models.pretrained`).
    """

    segmentation_type = "semantic"
    defaults: dict[str, Any] = {}

    @abc.abstractmethod
    def network(self, nbands: int, nclasses: int, **params: Any) -> KerasModel:
        """Build the keras network (softmax output over ``nclasses``)."""

    def params(self, params: Params) -> Params:
        known = {**self.defaults, "weights": None}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise DeepSegError(f"model parameter(s) {', '.join(unknown)} unknown; "
                               f"expected some of: {', '.join(sorted(known))}")
        return {**known, **params}

    def validate(self, nbands: int, nclasses: int, tilesize: int, params: Params) -> None:
        """Known parameter names, a readable ``weights`` file and at least two classes;
        subclasses add the checks of their own parameters."""
        merged = self.params(params)
        from ..models.pretrained import check_weights_path

        check_weights_path(merged["weights"])
        if nclasses < 2:
            raise DeepSegError(f"a softmax model needs at least 2 classes, not {nclasses}")

    def build(self, nbands: int, nclasses: int, tilesize: int, params: Params) -> KerasModel:
        self.validate(nbands, nclasses, tilesize, params)
        merged = self.params(params)
        weights = merged.pop("weights")
        model = self.network(nbands, nclasses, **merged)
        if weights:
            from ..models.pretrained import check_weights_path, load_weights

            load_weights(model, check_weights_path(weights), nbands, self.custom_objects())
        return model

    def compile(self, model: KerasModel, settings: TrainSettings) -> None:
        import keras

        from ..models.losses import SegmentationLoss, masked_metrics

        loss = SegmentationLoss(settings.nclasses, kind=settings.loss,
                                class_weights=settings.class_weights,
                                ignore_label=settings.ignore_label)
        try:
            optimizer = keras.optimizers.get({"class_name": settings.optimizer,
                                              "config": {"learning_rate": settings.learning_rate}})
        except ValueError:
            raise DeepSegError(f"optimizer {settings.optimizer!r} is not a Keras optimizer "
                               "(e.g. adam, sgd, adamw)") from None
        model.compile(optimizer=optimizer, loss=loss,
                      metrics=masked_metrics(settings.nclasses, settings.ignore_label))

    def prepare_batch(self, images: np.ndarray, labels: np.ndarray,
                      instance_classes: InstanceClasses | None = None,
                      params: Params | None = None) -> tuple[np.ndarray, np.ndarray]:
        return images.astype("float32"), labels.astype("int32")

    def predict_tiles(self, model: KerasModel, images: np.ndarray) -> list[TileResult]:
        probs = np.asarray(model.predict_on_batch(images.astype("float32")), dtype="float32")
        return [TileResult(probabilities=p) for p in probs]

    def custom_objects(self) -> dict[str, Any]:
        from ..models.losses import custom_objects

        return custom_objects()


class InstanceModel(abc.ABC):
    """Base for instance plugins: ``build``/``compile``/``prepare_batch``/``predict_tiles``
    as in :class:`ModelPlugin`; ``predict_tiles`` fills ``TileResult.instances``."""

    segmentation_type = "instance"
    defaults: dict[str, Any] = {}

    def params(self, params: Params) -> Params:
        """``params`` over ``defaults``; unknown names are an error listing the known ones."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise DeepSegError(f"model parameter(s) {', '.join(unknown)} unknown; "
                               f"expected some of: {', '.join(sorted(self.defaults))}")
        return {**self.defaults, **params}

    def validate(self, nbands: int, nclasses: int, tilesize: int, params: Params) -> None:
        self.params(params)

    @abc.abstractmethod
    def build(self, nbands: int, nclasses: int, tilesize: int, params: Params) -> KerasModel: ...

    @abc.abstractmethod
    def compile(self, model: KerasModel, settings: TrainSettings) -> None: ...

    @abc.abstractmethod
    def prepare_batch(self, images: np.ndarray, labels: np.ndarray,
                      instance_classes: InstanceClasses | None = None,
                      params: Params | None = None) -> tuple[Any, Any]: ...

    @abc.abstractmethod
    def predict_tiles(self, model: KerasModel, images: np.ndarray) -> list[TileResult]: ...

    def custom_objects(self) -> dict[str, Any]:
        return {}


MODEL_METHODS = ("validate", "build", "compile", "prepare_batch", "predict_tiles", "custom_objects")


def contract_problem(model: object) -> str | None:
    """Why ``model`` does not satisfy :class:`ModelPlugin`, or None."""
    kind = getattr(model, "segmentation_type", None)
    if kind not in ("semantic", "instance"):
        return f"segmentation_type is {kind!r}, expected 'semantic' or 'instance'"
    missing = [m for m in MODEL_METHODS if not callable(getattr(model, m, None))]
    return f"lacks {', '.join(missing)}" if missing else None

"""The model folder's one home: ``model/model.json`` written after training and read with
care, a weights file picked that is whole (best.keras, else last.keras, saying so) and of the
run model.json names (by the checkpoint record, training/checkpoint.py), and the trained model
loaded (Keras is imported only then)."""

from __future__ import annotations

import dataclasses
import json
import logging
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DeepSegError, cause, io_error
from ..io.atomic import write_text
from ..training import checkpoint

if TYPE_CHECKING:
    from _typeshed import StrPath
    from numpy.typing import ArrayLike

    from ..config.schema import Experiment
    from ..contracts.model import KerasModel, ModelPlugin
    from ..plugins.registry import Registry
    from ..store.reader import Store

log = logging.getLogger(__name__)

RETRAIN = "rerun 'deepseg train' to write it again"


@dataclass(frozen=True)
class ModelInfo:
    """model.json: what predict needs of a trained model besides its weights (normalization,
    bands, classes), ``run``, the key of the training run (deepseg_core.training.reuse), and
    ``backend``, the Keras backend it was trained on (any backend loads it)."""

    model: str
    params: dict[str, Any]
    nbands: int
    tilesize: int
    overlap: int
    segmentation_type: str
    classes: list[str]
    colours: list[list[int]]  # RGBA per class
    band_names: list[str]
    crs: str | None
    resolution: float | None
    stats: dict[str, Any]  # per band: count, mean, std, ... (lists)
    run: str | None = None
    backend: str | None = None  # None: written before backends were recorded (TensorFlow)

    @classmethod
    def read(cls, path: Path) -> ModelInfo:
        """model.json at ``path``; a DeepSegError naming the file when it is truncated, not
        JSON or lacks keys that predict needs."""
        try:
            data = json.loads(Path(path).read_text())
        except UnicodeDecodeError:
            raise DeepSegError(f"{path}: not a text file; {RETRAIN}") from None
        except ValueError as exc:
            raise DeepSegError(f"{path}: truncated or not JSON ({exc}); {RETRAIN}") from None
        except OSError as exc:
            raise io_error(path, exc, "cannot read", advice=None) from None
        if not isinstance(data, dict):
            raise DeepSegError(f"{path}: expected a JSON object, got {type(data).__name__}; "
                               f"{RETRAIN}")
        fields = [f for f in dataclasses.fields(cls)]
        missing = [f.name for f in fields if f.default is dataclasses.MISSING
                   and f.name not in data]
        if missing:
            raise DeepSegError(f"{path}: incomplete, missing {', '.join(missing)}; {RETRAIN}")
        return cls(**{f.name: data[f.name] for f in fields if f.name in data})

    def write(self, path: Path) -> None:
        """Write model.json atomically (``run`` and ``backend`` only when there are)."""
        data = dataclasses.asdict(self)
        for key in ("run", "backend"):
            if data[key] is None:
                del data[key]
        write_text(path, json.dumps(data, indent=1))


@dataclass(frozen=True)
class TrainedModel:
    """A trained model in its folder: model.json and the whole weights file picked."""

    info: ModelInfo
    weights: Path

    @property
    def identity(self) -> int:
        """What tells this model from a retrained one (the weights file's mtime in ns)."""
        return self.weights.stat().st_mtime_ns

    def load(self, registry: Registry) -> tuple[ModelPlugin, KerasModel]:
        """(model plugin, model)."""
        return load_model(registry, self.info.model, self.weights)


def damage(path: Path) -> str | None:
    """Why the .keras file at ``path`` is not whole (a .keras file is a zip), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member and checks its CRC
    except (zipfile.BadZipFile, EOFError) as exc:
        return f"not a complete .keras archive: {exc}"
    except OSError as exc:
        return cause(exc)
    return f"member {bad} is damaged" if bad else None


def pick_weights(model_dir: Path, record: dict[str, Any] | None = None) -> Path | None:
    """best.keras if whole, else a whole last.keras (with a warning); None when neither exists.
    With a checkpoint record (state.json) "whole" means the file the record committed, by its
    hash (final or still pending). A DeepSegError names the files when none found is whole."""
    problems: list[str] = []
    for name in ("best.keras", "last.keras"):
        try:
            path, why = _whole(model_dir, name, record)
        except DeepSegError as exc:  # not the file the record committed: damaged, or another
            why = damage(model_dir / name) if (model_dir / name).exists() else None
            problems.append(f"{model_dir / name} is damaged ({why})" if why
                            else str(exc).split(";")[0])
            continue
        if path is None:
            continue
        if why is not None:
            problems.append(f"{path} is damaged ({why})")
            continue
        if problems:
            log.warning(f"{problems[0]}; using {path.name} instead")
        return path
    if problems:
        raise DeepSegError(f"{'; '.join(problems)}; rerun 'deepseg train'")
    return None


def _whole(model_dir: Path, name: str,
           record: dict[str, Any] | None) -> tuple[Path | None, str | None]:
    """(the file holding ``name`` or None, why it is not whole or None)."""
    if record is not None and "files" in record:
        return checkpoint.committed(model_dir, record, name), None
    path = model_dir / name
    return (path, damage(path)) if path.exists() else (None, None)


def trained_model(outdir: Path, nbands: int, classes: Iterable[str]) -> TrainedModel:
    """The experiment's trained model: model.json and a whole weights file of the same run (by
    the checkpoint record, where there is one), checked against the experiment's bands and
    classes."""
    model_dir = outdir / "model"
    info_path = model_dir / "model.json"
    record = checkpoint.read_state(model_dir) if info_path.exists() else None
    weights = pick_weights(model_dir, record) if info_path.exists() else None
    if weights is None:
        raise DeepSegError(f"no trained model in {model_dir}: run 'deepseg train' first")
    info = ModelInfo.read(info_path)
    runs = [record["run"], *record.get("earlier", [])] if record and "run" in record else []
    if runs and info.run and info.run not in runs:
        raise DeepSegError(f"{info_path}: written by another training run ({info.run[:12]}) "
                           f"than the checkpoints in {model_dir / checkpoint.STATE} "
                           f"({runs[0][:12]}), so its normalization statistics are not the "
                           "weights'; rerun 'deepseg train' with training.resume: auto")
    if info.nbands != nbands or info.classes != list(classes):
        raise DeepSegError(f"the model in {model_dir} was trained with nbands={info.nbands} "
                           f"and classes {info.classes}, the experiment has "
                           f"nbands={nbands} and classes {list(classes)}")
    return TrainedModel(info, weights)


def write_model_info(exp: Experiment, store: Store, model_dir: Path,
                     run: str | None = None) -> None:
    """model.json of a model of ``exp`` trained on ``store``, with its run key."""
    info = model_info(exp, store.stats(), store.attrs["band_names"], store.attrs["crs"],
                      abs(store.attrs["transform"][1]), run)
    info.write(model_dir / "model.json")


def model_info(exp: Experiment, stats: Mapping[str, ArrayLike], band_names: Sequence[str],
               crs: str | None, resolution: float | None, run: str | None = None) -> ModelInfo:
    """The model.json of a model of ``exp`` trained on data with ``stats``."""
    from ..backend import current
    from ..contracts.raster import parse_colour

    return ModelInfo(model=exp.model.name, params=exp.model.params, nbands=exp.nbands,
                     tilesize=exp.tilesize, overlap=exp.overlap,
                     segmentation_type=exp.segmentation_type, classes=exp.class_names,
                     colours=[list(parse_colour(c.color)) for c in exp.classes],
                     band_names=list(band_names), crs=crs, resolution=resolution,
                     stats={k: np.asarray(v).tolist() for k, v in stats.items()}, run=run,
                     backend=current())


def load_saved(plugin: ModelPlugin, path: StrPath, compile: bool = False) -> KerasModel:
    """The model ``plugin`` saved at ``path``: through the plugin's own ``load`` where it has
    one, else through Keras with ``safe_mode=True`` (a file whose layers carry code, such as a
    Lambda, is refused instead of run: model files are data, see docs/crash-safety.md)."""
    own = getattr(plugin, "load", None)
    if callable(own):
        return own(path, compile=compile)
    import keras

    return keras.saving.load_model(path, custom_objects=plugin.custom_objects(),
                                   compile=compile, safe_mode=True)


def load_model(registry: Registry, name: str, weights: Path) -> tuple[ModelPlugin, KerasModel]:
    """(model plugin, model) of the model plugin ``name`` saved at ``weights``."""
    from ..backend import check_model
    from .pretrained import load_problem

    plugin = registry.get("model", name)
    check_model(plugin, name)
    try:
        model = load_saved(plugin, weights)
    except (OSError, ValueError) as exc:
        raise DeepSegError(f"{weights}: cannot load the trained model "
                           f"({load_problem(exc)})") from None
    return plugin, model

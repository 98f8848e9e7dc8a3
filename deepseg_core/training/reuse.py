"""A finished training run taken for a crossval fold instead of training the same run again.

The train stage holds out the last fold for validation (``training.validation_folds``) and
trains on the tiles that ``folds.split`` leaves; crossval's fold of that number trains on the
very same tiles with the same settings. Validation only watches such a run (unless
``early_stopping`` or ``reduce_lr`` act on what it sees), so the train stage's finished run is
that fold's run: on CPU with a fixed seed, bit for bit. Each run's model.json carries the key
of what shaped it (``run_key``); a fold takes a finished run only when the keys agree.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DeepSegError
from ..io.atomic import replacing
from . import checkpoint

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..config.schema import Experiment

#: training settings that do not change the weights a run ends with
WATCH_ONLY = {"resume", "monitor", "validation_folds"}
#: settings that came after run keys, left out at their default so earlier keys stay valid
LATER = {"jit_compile": "auto"}
#: the train stage's files that a fold takes (best.keras is left: the train stage picked it
#: on the validation fold, which is the fold's test data)
TAKEN = ("model/last.keras", "model/model.json", "logs/training.csv", "logs/curves.png")


def run_settings(exp: Experiment, train_idx: ArrayLike) -> dict[str, Any]:
    """Everything that shapes a run's final weights: the store's data settings and input files
    (a hash), the training tiles (a hash), the model, the training settings, the augmenters,
    and the Keras backend unless it is TensorFlow (whose earlier keys stay valid).
    Checkpoint records keep it, so a refused resume can name what differs."""
    from ..backend import DEFAULT, current
    from ..store.identity import settings_hash

    tiles = np.asarray(train_idx, dtype=np.int64)
    training = exp.training.model_dump(mode="json", exclude=WATCH_ONLY)
    for key, default in LATER.items():
        if training.get(key) == default:
            del training[key]
    backend = current()  # another backend's arithmetic ends with other weights
    return {"store": settings_hash(exp), "tiles": hashlib.sha256(tiles.tobytes()).hexdigest(),
            "training": training, **({"backend": backend} if backend != DEFAULT else {}),
            **exp.model_dump(mode="json", include={"epochs", "learning_rate", "model",
                                                   "augmentation", "classes"})}


def key_of(settings: dict[str, Any]) -> str:
    """The run key of ``run_settings``: what model.json and state.json record."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def run_key(exp: Experiment, train_idx: ArrayLike) -> str:
    """The key of a run of ``exp`` on ``train_idx`` (see ``run_settings``)."""
    return key_of(run_settings(exp, train_idx))


def finished_run(exp: Experiment, run_dir: Path, train_idx: ArrayLike) -> Path | None:
    """``run_dir``'s committed last.keras when that run ended all ``exp.epochs`` epochs with
    the key of a run on ``train_idx``; None otherwise (also when validation steered it)."""
    if exp.training.early_stopping or exp.training.reduce_lr:
        return None
    from ..models.folder import ModelInfo

    model_dir = run_dir / "model"
    try:
        info = ModelInfo.read(model_dir / "model.json")
        record = checkpoint.read_state(model_dir)
    except DeepSegError:
        return None  # none, or not readable: the fold trains its own
    key = run_key(exp, train_idx)
    if info.run != key or (record or {}).get("run", key) != key:
        return None
    if not record or record.get("stopped") or record["epoch"] != exp.epochs:
        return None
    try:
        return checkpoint.committed(model_dir, record, "last.keras")
    except DeepSegError:
        return None


def take_run(run_dir: Path, last: Path, folder: Path) -> None:
    """Copy the run's final weights, model.json and logs into the fold's ``folder`` (each file
    atomically); the fold's own earlier checkpoints are removed."""
    for name in TAKEN:
        source = last if name == "model/last.keras" else run_dir / name
        if source.exists():
            with replacing(folder / name) as tmp:
                shutil.copyfile(source, tmp)
    for stale in ("model/best.keras", "model/state.json"):
        (folder / stale).unlink(missing_ok=True)

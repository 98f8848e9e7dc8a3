"""The four stages, and loading an experiment to run them: the one way in for the CLI, the
cluster commands and the demo.

Each stage is a plain function ``(exp, registry, **options)`` in :data:`STAGE_FUNCTIONS`; its
module is imported when it runs, so ``deepseg --help`` imports none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DeepSegError

if TYPE_CHECKING:
    from ..config.schema import Experiment
    from ..contracts.model import KerasModel
    from ..plugins.registry import Registry

log = logging.getLogger(__name__)


def run_dataprep(exp: Experiment, registry: Registry) -> Path:
    """Labels rasterized, tiles cut, the HDF5 store written (or reused): its path."""
    from .dataprep import run

    return run(exp, registry)


def run_train(exp: Experiment, registry: Registry) -> KerasModel:
    """The model trained on the store (checkpoints, logs, curves): the trained model."""
    from .train import run

    return run(exp, registry)


def run_crossval(exp: Experiment, registry: Registry) -> dict[str, dict[str, Any]]:
    """Every chosen fold trained and scored, then all finished folds summarized: the table."""
    from .crossval import run

    return run(exp, registry)


def run_predict(exp: Experiment, registry: Registry, shard: str | None = None,
                merge: bool = False) -> Path:
    """The experiment's rasters predicted (one shard, or all and assembled): the output."""
    from .predict import run

    return run(exp, registry, shard=shard, merge=merge)


#: stage name (config.STAGES, in the order ``deepseg run`` runs them) -> its function
STAGE_FUNCTIONS: dict[str, Callable[..., Any]] = {"dataprep": run_dataprep, "train": run_train,
                                       "crossval": run_crossval, "predict": run_predict}


def load(experiment: str | Path | None, check_files: bool = True) -> Experiment:
    """Load the experiment, select its Keras backend (before Keras starts) and check it
    against the registry."""
    from ..backend import select
    from ..config import check_registry, load_experiment
    from ..plugins.manager import get_plugins

    exp = load_experiment(experiment, check_files=check_files)
    select(exp.backend, exp.source)
    loaded = get_plugins()
    for info in loaded.failures:  # the user may be about to miss what it registers
        log.warning(f"plugin {info.name!r} failed ({info.error}); see 'deepseg plugins'")
    check_registry(exp, loaded.registry)
    return exp


def run_stage(stage: str, exp: Experiment, **options: Any) -> Any:
    """Run one stage of a loaded experiment."""
    from ..plugins.manager import get_registry

    return STAGE_FUNCTIONS[stage](exp, get_registry(), **options)


def parse_stages(text: str | None, default: Sequence[str]) -> list[str]:
    """``--stages a,b`` checked against the stage names (``default`` when not given), in
    stage order."""
    from ..config import STAGES

    if text is None:
        return [s for s in STAGES if s in default]
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STAGES]
    if unknown or not chosen:
        what = f"unknown stage(s) {', '.join(unknown)}" if unknown else "no stage given"
        raise DeepSegError(f"--stages: {what}; expected some of {', '.join(STAGES)}")
    return [s for s in STAGES if s in chosen]

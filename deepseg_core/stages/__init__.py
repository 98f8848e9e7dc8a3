"""Loading an experiment and running its stages: the one way in for the CLI, hpc and demo."""

from __future__ import annotations

import importlib
import logging

from ..errors import DeepSegError

log = logging.getLogger(__name__)

STAGE_MODULES = {"dataprep": "deepseg_core.stages.dataprep", "train": "deepseg_core.stages.train",
                 "crossval": "deepseg_core.stages.crossval",
                 "predict": "deepseg_core.stages.predict"}


def load(experiment, check_files=True):
    """Load the experiment and check it against the registry."""
    from ..config import check_registry, load_experiment
    from ..plugins.manager import get_plugins

    exp = load_experiment(experiment, check_files=check_files)
    loaded = get_plugins()
    for info in loaded.failures:  # the user may be about to miss what it registers
        log.warning(f"plugin {info.name!r} failed ({info.error}); see 'deepseg plugins'")
    check_registry(exp, loaded.registry)
    return exp


def run_stage(stage: str, exp, **options):
    """Run one stage of a loaded experiment."""
    from ..plugins.manager import get_registry

    module = importlib.import_module(STAGE_MODULES[stage])
    return module.run(exp, get_registry(), **options)


def parse_stages(text: str | None, default: list[str]) -> list[str]:
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

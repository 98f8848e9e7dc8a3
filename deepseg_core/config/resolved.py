"""The resolved config actually used, saved beside an experiment's outputs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..io.atomic import write_text

if TYPE_CHECKING:
    from .schema import Experiment


def save_resolved(exp: Experiment, outdir: Path) -> None:
    """The resolved config actually used, as experiment.yaml in the experiment folder."""
    text = yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False)
    write_text(outdir / "experiment.yaml", f"# resolved from {exp.source}\n{text}")

"""The paths a job script names: the experiment, its logs, the venv, the container's binds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeepSegError
from .quoting import shell_word

if TYPE_CHECKING:
    from ..config.schema import Experiment


def absolute(exp: Experiment, value: str) -> Path:
    """A path of the hpc section: relative ones are relative to the experiment file."""
    path = Path(value).expanduser()
    base = exp.source.parent if exp.source else Path.cwd()
    return path if path.is_absolute() else (base / path).resolve()


def logs_folder(exp: Experiment) -> Path:
    """Where the jobs' logs go: ``hpc.logs`` or ``<outdir>/slurm-logs``."""
    return absolute(exp, exp.hpc.logs) if exp.hpc.logs else exp.outdir.resolve() / "slurm-logs"


def venv_folder(exp: Experiment) -> Path | None:
    """``hpc.venv``; else, without a container, the virtual environment running now."""
    if exp.hpc.venv:
        return absolute(exp, exp.hpc.venv)
    running = Path(sys.prefix)
    if not exp.hpc.container and sys.prefix != sys.base_prefix and (running / "bin" /
                                                                     "activate").exists():
        return running
    return None


def experiment_path(exp: Experiment) -> Path:
    """The experiment file the jobs run (absolute)."""
    if exp.source is None:
        raise DeepSegError("deepseg sbatch: the experiment must be loaded from a yaml file")
    return exp.source.resolve()


def binds_word(exp: Experiment) -> str:
    """The container's ``--bind`` list as one shell word."""
    return shell_word("apptainer --bind", ",".join(str(p) for p in bind_folders(exp)))


def bind_folders(exp) -> list[Path]:
    """The top-most folders the container must see: experiment, workdir, images, labels."""
    from ..config import expand_paths

    paths = [exp.source.resolve().parent, Path(exp.workdir).resolve(), logs_folder(exp)]
    scenes = exp.scenes or []
    sources = [*exp.images, *(src for scene in scenes for src in scene.images),
               *(exp.predict.images or [])]
    for src in sources:
        paths += [Path(p).resolve().parent for p in expand_paths(src.path)]
    for labels in [exp.labels, *(scene.labels for scene in scenes)]:
        if labels:
            paths += [Path(p).resolve().parent for p in (labels.path, labels.raster) if p]
    tops: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(top) for top in tops):
            tops.append(path)
    return sorted(tops)

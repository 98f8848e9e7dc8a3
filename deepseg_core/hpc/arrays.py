"""Slurm arrays that fit the raster and the cluster: shards capped by the raster's tile rows,
the ``%N`` throttle, and Slurm's ``MaxArraySize``."""

from __future__ import annotations

import logging
import re
import subprocess
from typing import TYPE_CHECKING

from ..errors import DeepSegError

if TYPE_CHECKING:
    from ..config.schema import Experiment
    from ..plugins.registry import Registry

log = logging.getLogger(__name__)

#: Slurm's MaxArraySize when the cluster does not say (array task ids 0..1000)
DEFAULT_MAX_ARRAY_SIZE = 1001


def array_spec(indices: str, throttle: int | None) -> str:
    """The ``--array`` value: ``indices``, then ``%N`` when at most N tasks may run at once."""
    return f"{indices}%{throttle}" if throttle else indices


def max_array_size() -> int:
    """Slurm's MaxArraySize from ``scontrol show config``; 1001 (Slurm's default) when there
    is no scontrol or it does not answer."""
    try:
        done = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_MAX_ARRAY_SIZE
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", done.stdout, re.M)
    return int(found.group(1)) if done.returncode == 0 and found else DEFAULT_MAX_ARRAY_SIZE


def check_array(what: str, last: int, limit: int) -> None:
    """A one-line DeepSegError when the array ``what``'s last task id ``last`` is not below
    Slurm's MaxArraySize ``limit``."""
    if last >= limit:
        raise DeepSegError(f"{what}: the array's last task id would be {last}, but Slurm's "
                           f"MaxArraySize is {limit} (task ids 0-{limit - 1}); use fewer")


def check_arrays(exp: Experiment, stages: list[str], shards: int, limit: int) -> None:
    """Check the experiment's arrays (prediction shards, crossval folds) against ``limit``."""
    if "predict" in stages:
        check_array(f"hpc.shards ({shards})", shards - 1, limit)
    if "crossval" in stages and exp.hpc.crossval_array:
        folds = exp.crossval.folds if exp.crossval.folds is not None else range(exp.folds)
        if folds:
            check_array("crossval.folds (one array task each)", max(folds), limit)


def tile_rows(exp: Experiment, registry: Registry) -> int | None:
    """The prediction raster's rows of tiles, None when its images cannot be opened now."""
    from ..data.stack import ImageStack
    from ..geo.grid import row_origins
    from ..stages.predict.settings import Settings

    s = Settings.of(exp)
    try:
        stack = ImageStack(s.images, registry, s.crs, s.resolution, key=s.images_key)
    except (DeepSegError, OSError) as exc:
        log.debug("cannot count the tile rows of the prediction images: %s", exc)
        return None
    try:
        grid = stack.grid
        windows = registry.get("tiler", s.tiler)(grid.width, grid.height, s.tilesize, s.overlap)
        return len(row_origins(windows))
    finally:
        stack.close()


def fitted_shards(shards: int, rows: int | None) -> tuple[int, str | None]:
    """(shards, notice): at most one shard per tile row (a shard is whole tile rows; more
    would be tasks with nothing to predict), and the line that says so when capped."""
    if rows is None or shards <= rows:
        return shards, None
    return rows, (f"notice: {shards} prediction shards asked for, but the raster has {rows} "
                  f"tile row(s) and a shard is whole tile rows: writing {rows} shard(s)")

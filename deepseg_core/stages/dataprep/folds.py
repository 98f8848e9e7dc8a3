"""Folds of a new store, checked: no fold, and no validation fold, may be left without tiles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...data.folds import assign_scene_folds, most_folds
from ...errors import DeepSegError

if TYPE_CHECKING:
    from ...config.schema import Experiment


def scene_folds(exp: Experiment, rows: np.ndarray, cols: np.ndarray, scenes: np.ndarray,
                nscenes: int) -> np.ndarray:
    """Fold per tile for ``exp`` (``folds``, ``fold_by``); DeepSegError saying how many folds
    the data allows when one would be empty."""
    k, by_scene = exp.folds, exp.fold_by == "scenes"
    where = f"{exp.source}: folds: {k}"
    if by_scene and k > nscenes:
        raise DeepSegError(f"{where} with fold_by: scenes needs at least {k} scenes, the "
                           f"experiment has {nscenes}: the data allows at most {nscenes} folds")
    folds = assign_scene_folds(rows, cols, scenes, exp.tilesize, k, by_scene)
    per_fold = np.bincount(folds[folds >= 0], minlength=k)
    empty = [int(f) for f in np.flatnonzero(per_fold == 0)]
    if empty:
        allowed = most_folds(rows, cols, scenes, exp.tilesize, k, by_scene)
        shown = ", ".join(map(str, empty[:3])) + (", ..." if len(empty) > 3 else "")
        counts = ", ".join(str(int(n)) for n in per_fold) if k <= 10 else "..."
        buffer = int((folds < 0).sum())
        data = f"{len(folds)} tiles" + (f" in {nscenes} scenes" if nscenes > 1 else "") + (
            f", {buffer} of them buffer tiles" if buffer else "")
        raise DeepSegError(f"{where} leaves {len(empty)} fold(s) without tiles (fold(s) "
                           f"{shown}; tiles per fold: {counts}; {data}): the data allows at "
                           f"most {allowed} fold{'' if allowed == 1 else 's'}")
    held = exp.training.validation_folds
    if held is not None:
        bad = [f for f in held if not 0 <= f < k]
        if bad:
            raise DeepSegError(f"{exp.source}: training.validation_folds: {bad} not in "
                               f"0..{k - 1} (folds: {k})")
    return folds

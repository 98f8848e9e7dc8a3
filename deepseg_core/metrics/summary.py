"""The cross-validation table: each key statistic per fold, with mean ± std over the folds."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.atomic import staged
from .base import as_float

if TYPE_CHECKING:
    from _typeshed import StrPath


def fold_statistics(summaries: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """``{statistic: {'folds': [...], 'mean': m, 'std': s}}`` over ``{fold: summary}``.

    Statistics missing from a fold count as nan; nan values are left out of mean and std.
    The std is the population std (ddof=0), defined for a single fold too.
    """
    keys: list[str] = []
    for summary in summaries.values():
        keys += [k for k in summary if k not in keys]
    table = {}
    for key in keys:
        values = np.array([as_float(s.get(key)) for s in summaries.values()], float)
        present = values[~np.isnan(values)]
        mean = float(present.mean()) if present.size else math.nan
        std = float(present.std()) if present.size else math.nan
        table[key] = {"folds": values.tolist(), "mean": mean, "std": std}
    return table


def fold_summary(summaries: Mapping[str, Mapping[str, float]], folder: StrPath,
                 stem: str = "folds", digits: int = 4) -> list[Path]:
    """Write ``stem.csv`` and ``stem.md`` tables of the statistics per fold and mean ± std."""
    folder = Path(folder)
    folds = [str(f) for f in summaries]
    table = fold_statistics(summaries)
    header = ["statistic", "mean ± std"] + [f"fold {n}" for n in folds]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in table.items():
        cells = [key, f"{_fmt(row['mean'], digits)} ± {_fmt(row['std'], digits)}"]
        lines.append("| " + " | ".join(cells + [_fmt(v, digits) for v in row["folds"]]) + " |")
    with staged(folder, f"{stem}.*") as stage:
        with open(stage / f"{stem}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["statistic", "mean", "std"] + [f"fold {n}" for n in folds])
            for key, row in table.items():
                writer.writerow([key, _fmt(row["mean"], digits), _fmt(row["std"], digits)]
                                + [_fmt(v, digits) for v in row["folds"]])
        (stage / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [folder / f"{stem}.csv", folder / f"{stem}.md"]


def _fmt(value: float, digits: int) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"

"""Inode accounting: the files and folders an experiment creates (NeSI quotas count both)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.schema import Experiment


def count_entries(folder: Path) -> dict[str, int]:
    """Files and folders under ``folder``, by the first component of their relative path."""
    counts: dict[str, int] = {}
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            rel = Path(root, name).relative_to(folder)
            top = rel.parts[0] if len(rel.parts) > 1 or name in dirs else "(top level)"
            counts[top] = counts.get(top, 0) + 1
    return counts


def count_files(exp: Experiment) -> dict[str, int]:
    """Entries the experiment created under its outdir, by folder, plus its store and total."""
    from ..store.identity import store_path

    outdir = exp.outdir.resolve()
    counts = dict(sorted(count_entries(outdir).items())) if outdir.is_dir() else {}
    store = store_path(exp).resolve()
    counts["store"] = int(store.exists() and not store.is_relative_to(outdir))
    counts["total"] = sum(counts.values())
    return counts


def describe(exp: Experiment, counts: dict[str, int]) -> list[str]:
    """Lines reporting ``count_files``: one per folder, the store, the total."""
    from ..store.identity import store_path

    width = max(len(k) for k in counts)
    lines = [f"files and folders of experiment '{exp.name}' ({exp.outdir}):"]
    for key, value in counts.items():
        where = f"  {store_path(exp)}" if key == "store" and value else ""
        lines.append(f"  {key:<{width}}  {value:>6}{where}")
    return lines

"""Report figures (matplotlib ``Figure`` objects rendered by Agg; pyplot's state is untouched)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .confusion import row_normalized

#: Above this many classes the cells carry no numbers (they would not be readable).
ANNOTATE_MAX = 20


def plot_confusion(counts: np.ndarray, class_names: Sequence[str], path: Path,
                   title: str | None = None) -> Path:
    """A PNG of the confusion matrix: counts and row-normalized (producer's accuracy)."""
    from matplotlib.figure import Figure

    counts = np.asarray(counts)
    n = len(class_names)
    side = max(4.0, 0.45 * n + 2.5)
    fig = Figure(figsize=(2 * side + 1.5, side + 0.8), layout="constrained")
    panels = fig.subplots(1, 2)
    normalized = row_normalized(counts)
    for ax, values, label, fmt in ((panels[0], counts, "pixels", "{:,.0f}"),
                                   (panels[1], normalized, "share of reference row", "{:.2f}")):
        image = ax.imshow(values, cmap="Blues", vmin=0, interpolation="nearest")
        fig.colorbar(image, ax=ax, label=label, shrink=0.8)
        ax.set_xticks(range(n), class_names, rotation=45, ha="right")
        ax.set_yticks(range(n), class_names)
        ax.set_xlabel("predicted (mapped)")
        ax.set_ylabel("reference (truth)")
        if n <= ANNOTATE_MAX:
            limit = values.max() / 2 if values.size else 0
            for (i, j), value in np.ndenumerate(values):
                ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=8,
                        color="white" if value > limit else "black")
    panels[0].set_title("counts")
    panels[1].set_title("row-normalized")
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def plot_pr_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
                   title: str | None = None) -> Path:
    """A PNG of (interpolated) precision-recall curves, ``{label: (recall, precision)}``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.subplots()
    for (label, (recall, precision)), style in zip(curves.items(), ("-", "--", ":", "-.") * 9):
        ax.plot(recall, precision, style, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="lower left")
    if title:
        ax.set_title(title)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path

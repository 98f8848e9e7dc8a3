"""Training curves as one PNG (loss, accuracy, mean IoU; train vs validation) from the CSV log."""

from __future__ import annotations

import csv
from pathlib import Path

from ..io.atomic import replacing


def read_log(path: Path) -> dict[str, list[float]]:
    """Columns of a Keras CSVLogger file as float lists."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                columns.setdefault(key, []).append(float("nan"))
    return columns


def plot_curves(log: Path, out: Path) -> Path | None:
    """Write ``out`` (PNG) with one panel per metric found in ``log``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = read_log(log)
    if not columns.get("epoch"):
        return None
    epochs = [e + 1 for e in columns["epoch"]]
    metrics: list[str] = [m for m in ("loss", "accuracy", "miou") if m in columns]
    metrics += sorted(k for k in columns if k not in ("epoch", "learning_rate", *metrics)
                      and not k.startswith("val_") and f"val_{k}" in columns)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        ax.plot(epochs, columns[metric], "o-", label="train")
        if f"val_{metric}" in columns:
            ax.plot(epochs, columns[f"val_{metric}"], "s--", label="validation")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    try:
        with replacing(out) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
    finally:
        plt.close(fig)
    return out

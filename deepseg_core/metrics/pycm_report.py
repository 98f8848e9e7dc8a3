"""The built-in semantic metric "pycm": confusion counts, pycm statistics and reports.

Counts accumulate per tile with ``np.bincount``; pycm receives the counts matrix (never pixel
lists) with the class names, so every report speaks in class names. Precision is the user's
accuracy (per predicted class), recall the producer's accuracy (per reference class).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DeepSegError
from ..io.atomic import staged
from .base import SEMANTIC, as_float, check_class_names, merged_metric
from .confusion import as_pycm_matrix, confusion_counts

if TYPE_CHECKING:
    from _typeshed import StrPath
    from numpy.typing import ArrayLike

    from .base import State

#: pycm's per-class statistic for each per-class summary key.
CLASS_STATS = {"F1": "F1", "IoU": "J", "precision": "PPV", "recall": "TPR"}


class PycmMetric:
    """Semantic metric: confusion counts; summary and reports computed by pycm."""

    applies_to = SEMANTIC
    kind = "pycm"

    def __init__(self, class_names: Sequence[str], ignore_label: int | None = None) -> None:
        self.class_names = check_class_names(class_names)
        self.ignore_label = ignore_label
        n = len(self.class_names)
        self.counts = np.zeros((n, n), np.int64)

    def update(self, truth: ArrayLike, prediction: ArrayLike, valid: ArrayLike | None = None,
               **extra: Any) -> None:
        """Add the pixels of one tile (ignored pixels and ``valid == False`` left out)."""
        self.counts += confusion_counts(truth, prediction, len(self.class_names),
                                        self.ignore_label, valid)

    def state(self) -> State:
        """Class names, ignore label and the counts matrix (rows = truth), as JSON types."""
        return {"kind": self.kind, "class_names": list(self.class_names),
                "ignore_label": self.ignore_label, "counts": self.counts.tolist()}

    @classmethod
    def merge(cls, states: list[State]) -> PycmMetric:
        """A metric whose counts are the sum of the counts of ``states`` (e.g. all folds)."""
        metric, states = merged_metric(cls, states)
        for state in states:
            counts = np.asarray(state["counts"])
            if counts.shape != metric.counts.shape:
                raise DeepSegError(f"metric state counts have shape {counts.shape}, "
                                   f"expected {metric.counts.shape}")
            metric.counts += counts.astype(np.int64)
        return metric

    def confusion_matrix(self) -> Any:
        """The counts as a ``pycm.ConfusionMatrix`` (rows = reference, columns = mapped)."""
        import pycm

        return pycm.ConfusionMatrix(matrix=as_pycm_matrix(self.counts, self.class_names),
                                    classes=list(self.class_names))

    def summary(self) -> dict[str, float]:
        """Overall accuracy, kappa, mean F1/IoU and per-class F1, IoU, precision, recall."""
        cm = self.confusion_matrix()
        per_class = {key: {name: as_float(getattr(cm, stat)[name]) for name in self.class_names}
                     for key, stat in CLASS_STATS.items()}
        result = {"overall_accuracy": as_float(cm.Overall_ACC), "kappa": as_float(cm.Kappa),
                  "mean_F1": _nanmean(per_class["F1"].values()),
                  "mean_IoU": _nanmean(per_class["IoU"].values())}
        for key, values in per_class.items():
            result.update({f"{key}[{name}]": value for name, value in values.items()})
        return result

    def write_report(self, folder: StrPath, stem: str) -> list[Path]:
        """pycm HTML, CSV (statistics and matrix) and stat text, plus a confusion-matrix PNG."""
        from .plots import plot_confusion

        folder = Path(folder)
        cm = self.confusion_matrix()
        written = [(cm.save_html, [".html"]), (partial(cm.save_csv, header=True),
                                                [".csv", "_matrix.csv"]), (cm.save_stat, [".pycm"])]
        paths = []
        with staged(folder, f"{stem}.*") as stage:
            for save, suffixes in written:
                with warnings.catch_warnings():  # pycm 4.x leaves save_csv's files behind
                    warnings.simplefilter("ignore", ResourceWarning)
                    result = save(str(stage / stem), address=False)
                if not result.get("Status"):
                    cause = " ".join(str(result.get("Message")).split())
                    raise DeepSegError(f"{folder / stem}{suffixes[0]}: cannot write ({cause}); "
                                       "free space or fix the folder's permissions and rerun")
                paths += [folder / f"{stem}{suffix}" for suffix in suffixes]
            plot_confusion(self.counts, self.class_names, stage / f"{stem}_confusion.png",
                           title=stem)
            paths.append(folder / f"{stem}_confusion.png")
        return paths


def _nanmean(values: Iterable[float]) -> float:
    kept = np.array([v for v in values if not np.isnan(v)], float)
    return float(kept.mean()) if kept.size else float("nan")

"""Confusion matrices of pixel counts, accumulated with ``np.bincount`` (never pixel lists)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import labelled_pairs

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def confusion_counts(truth: ArrayLike, prediction: ArrayLike, nclasses: int,
                     ignore_label: int | None = None,
                     valid: ArrayLike | None = None) -> np.ndarray:
    """``(nclasses, nclasses)`` int64 counts, rows = truth (reference), columns = prediction."""
    t, p = labelled_pairs(truth, prediction, nclasses, ignore_label, valid)
    flat = np.bincount(t * nclasses + p, minlength=nclasses * nclasses)
    return flat.reshape(nclasses, nclasses).astype(np.int64, copy=False)


def as_pycm_matrix(counts: np.ndarray, class_names: list[str]) -> dict[str, dict[str, int]]:
    """The counts as pycm's ``matrix`` argument: ``{truth name: {predicted name: count}}``."""
    return {a: {b: int(counts[i, j]) for j, b in enumerate(class_names)}
            for i, a in enumerate(class_names)}


def row_normalized(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (producer's view); rows without pixels stay 0."""
    counts = np.asarray(counts, float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

"""Error maps: a coded raster saying, per pixel, how the prediction relates to the truth.

Binary (2 classes): 0 = nodata/ignored, 1 = TP, 2 = FP, 3 = TN, 4 = FN for the positive class.
Multi-class: 0 = nodata/ignored, ``1 + truth * nclasses + prediction`` otherwise, so every cell of
the confusion matrix has its code (``np.bincount`` of the codes, less code 0, reshaped to
``(n, n)`` is the confusion matrix). uint8 up to 15 classes, uint16 beyond. Each function returns
``(codes, colormap, names)``: the colour table ``{code: (r, g, b, a)}`` and the legend names
indexed by code, ready for a raster writer's ``colormap`` and ``class_names``.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DeepSegError
from .base import check_class_names, keep_mask, labelled_pairs

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

Colormap = dict[int, tuple[int, int, int, int]]
#: (codes, colour table, legend names)
ErrorMap = tuple[np.ndarray, Colormap, tuple[str, ...]]

BINARY_NAMES = ("nodata", "true positive", "false positive", "true negative", "false negative")
BINARY_COLOURS = {0: (0, 0, 0, 0), 1: (26, 152, 80, 255), 2: (215, 48, 39, 255),
                  3: (224, 224, 224, 255), 4: (69, 117, 180, 255)}
#: Class colours when none are given (tab10), extended by evenly spaced hues.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
MAX_CLASSES = 255  # 1 + 255 * 255 codes still fit in uint16


def error_map(truth: ArrayLike, prediction: ArrayLike, class_names: Sequence[str],
              ignore_label: int | None = None, valid: ArrayLike | None = None,
              positive: int = 1, colours: Sequence[Sequence[int]] | None = None) -> ErrorMap:
    """Binary error map for 2 classes (``positive`` = the positive class), else multi-class."""
    if len(class_names) == 2:
        return binary_error_map(truth, prediction, class_names, ignore_label, valid, positive)
    return multiclass_error_map(truth, prediction, class_names, ignore_label, valid, colours)


def binary_error_map(truth: ArrayLike, prediction: ArrayLike,
                     class_names: Sequence[str] = ("negative", "positive"),
                     ignore_label: int | None = None, valid: ArrayLike | None = None,
                     positive: int = 1) -> ErrorMap:
    """uint8 codes 0 nodata, 1 TP, 2 FP, 3 TN, 4 FN; colour table; legend names."""
    names = check_class_names(class_names)
    if len(names) != 2 or positive not in (0, 1):
        raise DeepSegError(f"a binary error map needs 2 classes and positive 0 or 1, got "
                           f"{names} and positive {positive}")
    keep, t, p = _pairs(truth, prediction, 2, ignore_label, valid)
    t_pos, p_pos = t == positive, p == positive
    flat = np.select([t_pos & p_pos, ~t_pos & p_pos, ~t_pos & ~p_pos], [1, 2, 3], 4)
    codes = _scatter(keep, flat, np.uint8)
    legend = ("nodata",) + tuple(f"{n} ({names[positive]})" for n in BINARY_NAMES[1:])
    return codes, dict(BINARY_COLOURS), legend


def multiclass_error_map(truth: ArrayLike, prediction: ArrayLike, class_names: Sequence[str],
                         ignore_label: int | None = None, valid: ArrayLike | None = None,
                         colours: Sequence[Sequence[int]] | None = None) -> ErrorMap:
    """Codes ``1 + truth * n + prediction`` (0 nodata); colour table; legend names."""
    names = check_class_names(class_names)
    n = len(names)
    if n > MAX_CLASSES:
        raise DeepSegError(f"error maps support up to {MAX_CLASSES} classes, got {n}")
    keep, t, p = _pairs(truth, prediction, n, ignore_label, valid)
    dtype = np.uint8 if 1 + n * n <= 256 else np.uint16
    codes = _scatter(keep, 1 + t * n + p, dtype)
    return codes, multiclass_colormap(n, colours), multiclass_names(names)


def multiclass_names(class_names: Sequence[str]) -> tuple[str, ...]:
    """Legend names by code: 'nodata', then 'Forest correct' / 'Forest as Grass'."""
    return ("nodata",) + tuple(f"{a} correct" if a == b else f"{a} as {b}"
                               for a in class_names for b in class_names)


def multiclass_colormap(nclasses: int, colours: Sequence[Sequence[int]] | None = None,
                        ) -> Colormap:
    """Correct pixels in a pale tint of their class colour, errors in the predicted class colour."""
    base = [_rgb(c) for c in colours] if colours else class_palette(nclasses)
    if len(base) < nclasses:
        raise DeepSegError(f"error map: {len(base)} colours given for {nclasses} classes")
    table = {0: (0, 0, 0, 0)}
    for t in range(nclasses):
        for p in range(nclasses):
            r, g, b = base[p]
            if t == p:  # pale: the eye goes to the errors
                r, g, b = (round(v + 0.65 * (255 - v)) for v in (r, g, b))
            table[1 + t * nclasses + p] = (r, g, b, 255)
    return table


def class_palette(nclasses: int) -> list[tuple[int, int, int]]:
    """``nclasses`` distinct RGB colours: tab10, then evenly spaced hues."""
    extra = nclasses - len(PALETTE)
    hues = [colorsys.hsv_to_rgb(i / extra, 0.75, 0.85) for i in range(max(extra, 0))]
    return (list(PALETTE) + [_rgb([round(255 * v) for v in h]) for h in hues])[:nclasses]


def _rgb(colour: Sequence[float]) -> tuple[int, int, int]:
    """The first three values of a colour as integers."""
    return int(colour[0]), int(colour[1]), int(colour[2])


def error_counts(codes: ArrayLike, nclasses: int) -> np.ndarray:
    """Pixel count per code (index = code) of an error map, code 0 included."""
    size = 5 if nclasses == 2 else 1 + nclasses * nclasses
    return np.bincount(np.asarray(codes).ravel(), minlength=size)


def _pairs(truth: ArrayLike, prediction: ArrayLike, n: int, ignore_label: int | None,
           valid: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = keep_mask(np.asarray(truth), ignore_label, valid)
    t, p = labelled_pairs(truth, prediction, n, ignore_label, valid)
    return keep, t, p


def _scatter(keep: np.ndarray, values: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    codes = np.zeros(keep.shape, dtype)
    codes[keep] = values
    return codes

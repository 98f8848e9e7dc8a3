"""The metric contract: what ``registry.add_metric(name, factory)`` expects of ``factory``.

``factory(class_names, ignore_label)`` returns a fresh :class:`Metric`. The crossval stage feeds
it tile by tile (``update``), keeps its ``state()`` per fold (JSON), combines folds with
``merge(states)``, reports ``summary()`` and writes files with ``write_report``. Metrics never
keep pixels: a semantic metric keeps confusion counts, an instance metric keeps one score and
one match flag per prediction. Only numpy is imported at module level; report libraries
(pycm, matplotlib) are imported inside the methods that write files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from ..errors import DeepSegError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

SEMANTIC: Literal["semantic"] = "semantic"
INSTANCE: Literal["instance"] = "instance"
State = dict[str, Any]  # a metric's state: JSON types only


@runtime_checkable
class Metric(Protocol):
    """An accumulating evaluation metric over tiles, images and folds."""

    @property
    def applies_to(self) -> Literal["semantic", "instance"]:
        """Which segmentation type the metric scores."""

    def update(self, truth: ArrayLike, prediction: Any, **extra: Any) -> None:
        """Add one tile or image.

        Semantic: ``truth`` and ``prediction`` are integer class arrays of the same shape
        (0..nclasses-1); pixels where ``truth == ignore_label`` or where the optional boolean
        ``valid`` array is False are left out.

        Instance: ``truth`` is an instance-id array (0 = background) with ``truth_classes``
        ``{id: class}``; ``prediction`` is a list of
        :class:`deepseg_core.contracts.model.Instance`, or an instance-id array with ``scores``
        and ``classes`` ``{id: value}``. ``valid`` as above.
        """

    def state(self) -> State:
        """Everything accumulated so far, JSON-serializable (saved per fold)."""

    def merge(self, states: list[State]) -> Metric:
        """A new metric of the same kind holding the combination of ``states`` (a classmethod
        on the built-ins, so callable on the factory or on any instance)."""

    def summary(self) -> dict[str, float]:
        """Key statistics by name (nan where undefined), e.g. ``'F1[Forest]'``."""

    def write_report(self, folder: Path, stem: str) -> list[Path]:
        """Write the metric's report files named ``stem...`` into ``folder``; their paths."""


class MetricFactory(Protocol):
    """What ``registry.add_metric(name, factory)`` expects of ``factory``: a fresh metric
    from ``factory(class_names, ignore_label)``, merged states from ``factory.merge``."""

    def __call__(self, class_names: Sequence[str], ignore_label: int | None = None) -> Metric: ...

    def merge(self, states: list[State]) -> Metric: ...


def check_class_names(class_names: Sequence[object], minimum: int = 2) -> list[str]:
    """Class names as a list of distinct strings (at least ``minimum``)."""
    names = [str(n) for n in class_names]
    if len(names) < minimum:
        raise DeepSegError(f"this metric needs at least {minimum} classes, got {names}")
    if len(set(names)) != len(names):
        raise DeepSegError(f"class names must be distinct for the metric reports, got {names}")
    return names


def labelled_pairs(truth: ArrayLike, prediction: ArrayLike, nclasses: int,
                   ignore_label: int | None = None,
                   valid: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flat int64 (truth, prediction) of the pixels that count (not ignored, inside ``valid``)."""
    true, pred = np.asarray(truth), np.asarray(prediction)
    if true.shape != pred.shape:
        raise DeepSegError(f"truth {true.shape} and prediction {pred.shape} differ in shape")
    keep = keep_mask(true, ignore_label, valid)
    t = true[keep].astype(np.int64, copy=False)
    p = pred[keep].astype(np.int64, copy=False)
    for what, values in (("truth", t), ("prediction", p)):
        if values.size and (values.min() < 0 or values.max() >= nclasses):
            bad = values[(values < 0) | (values >= nclasses)][0]
            raise DeepSegError(f"{what} holds class {bad}, outside 0..{nclasses - 1}"
                               + (f" (ignore_label is {ignore_label})" if what == "truth" else ""))
    return t, p


def keep_mask(truth: np.ndarray, ignore_label: int | None, valid: ArrayLike | None) -> np.ndarray:
    """Boolean array of the pixels of ``truth`` that count."""
    keep = np.ones(truth.shape, bool) if ignore_label is None else truth != ignore_label
    if valid is not None:
        inside = np.asarray(valid, bool)
        if inside.shape != truth.shape:
            raise DeepSegError(f"valid mask {inside.shape} and truth {truth.shape} differ in shape")
        keep &= inside
    return keep


def as_float(value: Any) -> float:
    """A float from a statistic (pycm writes 'None' or a string where it is undefined)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return math.nan
    return result if math.isfinite(result) else math.nan


def check_state(state: State, kind: str, class_names: list[str] | None = None) -> State:
    """``state`` after checking it comes from metric ``kind`` with the same class names."""
    if not isinstance(state, dict) or state.get("kind") != kind:
        got = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise DeepSegError(f"cannot merge a {got!r} metric state into a {kind!r} metric")
    if class_names is not None and list(state["class_names"]) != list(class_names):
        raise DeepSegError(f"cannot merge metric states with different classes: "
                           f"{state['class_names']} vs {class_names}")
    return state


def merged_metric(cls: Any, states: list[State]) -> tuple[Any, list[State]]:
    """A fresh ``cls`` metric for merging ``states``, and the states checked against it."""
    if not states:
        raise DeepSegError("merging metric states needs at least one state")
    first = check_state(states[0], cls.kind)
    metric = cls(first["class_names"], first.get("ignore_label"))
    return metric, [check_state(s, cls.kind, metric.class_names) for s in states]

"""The built-in instance metrics: one-to-one mask matching, precision/recall/F1 and COCO mask AP.

"instances" is class-agnostic: any prediction may match any truth object (the usual choice for
one object class such as tree crowns or buildings). "instances_per_class" matches only objects
of the same class and averages AP over the classes that have truth objects, as COCO does.
Memory stays bounded: after ``update`` only each prediction's score and its true-positive flag at
each IoU threshold are kept, plus the number of truth objects; never masks.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DeepSegError
from ..io.atomic import staged
from . import matching
from .base import INSTANCE, check_class_names, keep_mask, merged_metric
from .matching import IOU_THRESHOLDS

if TYPE_CHECKING:
    from _typeshed import StrPath
    from numpy.typing import ArrayLike

    from ..contracts.model import Instance
    from .base import State

#: an id -> value mapping of objects (keys ints, or strings after a JSON round trip)
ById = Mapping[int, Any] | Mapping[str, Any]

ALL = "all"  # the one group of the class-agnostic metric


class InstanceMetric:
    """Class-agnostic instance metric: TP/FP/FN, precision, recall, F1 at IoU 0.5 and mask AP."""

    applies_to = INSTANCE
    kind = "instances"
    class_aware = False

    def __init__(self, class_names: Sequence[str], ignore_label: int | None = None) -> None:
        self.class_names = check_class_names(class_names, minimum=1)
        self.ignore_label = ignore_label  # instance ids use 0 for background; pass `valid`
        self.groups: dict[str, dict[str, Any]] = {}

    def _group(self, key: str) -> dict[str, Any]:
        return self.groups.setdefault(key, {"ntruth": 0, "scores": [], "tp": []})

    def _key(self, class_id: int | None) -> str:
        if not self.class_aware:
            return ALL
        if class_id is None:
            raise DeepSegError(f"metric {self.kind!r} needs the class of every object "
                               "(truth_classes, and classes for an id-array prediction)")
        c = int(class_id)
        return self.class_names[c] if 0 <= c < len(self.class_names) else str(c)

    def update(self, truth: ArrayLike, prediction: np.ndarray | Sequence[Instance],
               truth_classes: ById | None = None, scores: ById | None = None,
               classes: ById | None = None, valid: ArrayLike | None = None,
               **extra: Any) -> None:
        """Match one tile's predictions (Instance list or id array) with its truth id array."""
        true = np.asarray(truth)
        keep = keep_mask(true, None, valid)
        ids, dense = matching.truth_objects(np.where(keep, true, 0))
        masks, pred_scores, pred_classes = _predictions(prediction, true.shape, keep, scores,
                                                        classes)
        ious = matching.mask_ious(dense, len(ids), masks)
        truth_keys = [self._key(_lookup(truth_classes, i)) for i in ids]
        pred_keys = [self._key(c) for c in pred_classes]
        if self.class_aware:
            same = np.array(pred_keys, object)[:, None] == np.array(truth_keys, object)[None, :]
            ious = np.where(same, ious, 0.0)
        tp = np.stack([matching.greedy_match(ious, pred_scores, t) for t in IOU_THRESHOLDS])
        pred_key = np.array(pred_keys, object)
        for key in set(truth_keys) | set(pred_keys):
            group, chosen = self._group(key), pred_key == key
            group["ntruth"] += truth_keys.count(key)
            group["scores"].append(pred_scores[chosen])
            group["tp"].append(tp[:, chosen])

    def _arrays(self, key: str) -> tuple[int, np.ndarray, np.ndarray]:
        group = self.groups[key]
        scores = np.concatenate(group["scores"]) if group["scores"] else np.zeros(0)
        tp = (np.concatenate(group["tp"], axis=1) if group["tp"]
              else np.zeros((IOU_THRESHOLDS.size, 0), bool))
        return group["ntruth"], scores, tp

    def state(self) -> State:
        """Per group (class name, or 'all'): truth count, prediction scores and TP flags."""
        groups = {}
        for key in sorted(self.groups):
            ntruth, scores, tp = self._arrays(key)
            groups[key] = {"ntruth": int(ntruth), "scores": scores.tolist(),
                           "tp": tp.astype(int).tolist()}
        return {"kind": self.kind, "class_names": list(self.class_names),
                "ignore_label": self.ignore_label, "iou_thresholds": IOU_THRESHOLDS.tolist(),
                "groups": groups}

    @classmethod
    def merge(cls, states: list[State]) -> InstanceMetric:
        """A metric holding the predictions and truth counts of all ``states`` (e.g. folds)."""
        metric, states = merged_metric(cls, states)
        for state in states:
            for key, saved in state["groups"].items():
                group = metric._group(key)
                group["ntruth"] += int(saved["ntruth"])
                group["scores"].append(np.asarray(saved["scores"], float))
                tp = np.asarray(saved["tp"], bool).reshape(IOU_THRESHOLDS.size, -1)
                group["tp"].append(tp)
        return metric

    def table(self) -> list[dict[str, Any]]:
        """One row per group and IoU threshold: TP, FP, FN, precision, recall, F1, AP."""
        rows = []
        for key in sorted(self.groups):
            ntruth, scores, tp = self._arrays(key)
            for threshold, hits in zip(IOU_THRESHOLDS, tp):
                ntp, nfp = int(hits.sum()), int(hits.size - hits.sum())
                precision, recall, f1 = matching.detection_scores(ntp, nfp, ntruth - ntp)
                rows.append({"group": key, "iou_threshold": float(threshold), "TP": ntp,
                             "FP": nfp, "FN": ntruth - ntp, "precision": precision,
                             "recall": recall, "F1": f1,
                             "AP": matching.average_precision(scores, hits, ntruth)})
        return rows

    def summary(self) -> dict[str, float]:
        """Precision, recall, F1 and TP/FP/FN at IoU 0.5; AP50, AP75 and AP[.5:.95]."""
        rows = self.table()
        at50 = [r for r in rows if r["iou_threshold"] == IOU_THRESHOLDS[0]]
        tp, fp, fn = (sum(r[k] for r in at50) for k in ("TP", "FP", "FN"))
        precision, recall, f1 = matching.detection_scores(tp, fp, fn)
        ap = np.full((len(self.groups), IOU_THRESHOLDS.size), np.nan)
        for i, row in enumerate(rows):
            ap.flat[i] = row["AP"]
        per_threshold = [_nanmean(column) for column in ap.T]
        result = {"precision": precision, "recall": recall, "F1": f1, "TP": float(tp),
                  "FP": float(fp), "FN": float(fn), "AP50": per_threshold[0],
                  "AP75": per_threshold[5], "AP": _nanmean(per_threshold)}
        if self.class_aware:
            for key, values in zip(sorted(self.groups), ap):
                result[f"AP50[{key}]"], result[f"AP[{key}]"] = float(values[0]), _nanmean(values)
        return result

    def write_report(self, folder: StrPath, stem: str) -> list[Path]:
        """A CSV per group and threshold, a text summary and a precision-recall PNG."""
        from .plots import plot_pr_curves

        folder = Path(folder)
        names = f"{stem}_instances.csv", f"{stem}_instances.txt", f"{stem}_pr.png"
        rows = self.table()
        pooled = [self._arrays(key) for key in sorted(self.groups)]
        ntruth = sum(p[0] for p in pooled)
        scores = np.concatenate([p[1] for p in pooled]) if pooled else np.zeros(0)
        curves = {}
        for index in (0, 5):
            hits = np.concatenate([p[2][index] for p in pooled]) if pooled else np.zeros(0, bool)
            precision = matching.interpolated_precision(scores, hits, ntruth)
            label = f"IoU {IOU_THRESHOLDS[index]:.2f}, AP {precision.mean() if ntruth else 0:.3f}"
            curves[label] = (matching.RECALL_POINTS, precision)
        with staged(folder, f"{stem}_instances.*") as stage:
            with open(stage / names[0], "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["group"])
                writer.writeheader()
                writer.writerows(rows)
            (stage / names[1]).write_text("".join(f"{k}: {v:.4f}\n"
                                                  for k, v in self.summary().items()))
            plot_pr_curves(curves, stage / names[2], title=stem)
        return [folder / name for name in names]


class ClassAwareInstanceMetric(InstanceMetric):
    """Instance metric matching objects of the same class only; AP averaged over classes."""

    kind = "instances_per_class"
    class_aware = True


def _predictions(prediction: np.ndarray | Sequence[Instance], shape: tuple[int, ...],
                 keep: np.ndarray, scores: ById | None, classes: ById | None,
                 ) -> tuple[list[np.ndarray], np.ndarray, list[Any]]:
    """Masks (inside ``keep``, empty ones dropped), scores and classes of the predictions."""
    if isinstance(prediction, np.ndarray):
        if prediction.shape != shape:
            raise DeepSegError(f"prediction ids {prediction.shape} and truth {shape} differ")
        ids = [int(i) for i in np.unique(prediction[keep]) if i > 0]
        items = [(prediction == i, _lookup(scores, i, 1.0), _lookup(classes, i)) for i in ids]
    else:
        items = [(p.full_mask(shape), p.score, p.class_id) for p in prediction]
    masks, pred_scores, pred_classes = [], [], []
    for mask, score, class_id in items:
        mask = mask & keep
        if mask.any():
            masks.append(mask)
            pred_scores.append(float(score))
            pred_classes.append(class_id)
    return masks, np.array(pred_scores, float), pred_classes


def _lookup(mapping: ById | None, object_id: Any, default: Any = None) -> Any:
    """``mapping[id]`` whether its keys are ints or strings (as after a JSON round trip)."""
    table: Mapping[Any, Any] = mapping or {}
    return table.get(int(object_id), table.get(str(int(object_id)), default))


def _nanmean(values: ArrayLike) -> float:
    array = np.asarray(values, float)
    array = array[~np.isnan(array)]
    return float(array.mean()) if array.size else float("nan")

"""Duplicate removal across tiles: greedy suppression by score, streamed stripe by stripe.

Greedy suppression is not transitive: candidates are taken in descending score and each one
that survives suppresses the lower-score candidates that duplicate *it*. In a chain A~B~C
where A and C do not overlap and A scores highest, A removes B and C survives.

The stream keeps only undecided candidates. A candidate is *complete* once no later one can
overlap it (it ends above the row where later candidates start). It is kept for good when it
is complete and every higher-score duplicate has been removed for good; it is removed for
good as soon as a higher-score duplicate is kept for good. This gives exactly the result of
one global greedy pass while holding only a stripe or two of candidates in memory.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import shapely

KEPT, REMOVED, OPEN = 1, 0, -1
#: candidates as columns of equal length: ``geometry``, ``score``, ``class_id``, ``extent``...;
#: ``{}`` when there are none
Columns = dict[str, np.ndarray]


def concat_columns(parts: list[Columns]) -> Columns:
    """Concatenate column dicts (same keys) into one."""
    parts = [p for p in parts if p and len(p["geometry"])]
    if not parts:
        return {}
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def take(columns: Columns, index: np.ndarray) -> Columns:
    """The rows ``index`` (a mask or indices) of a column dict."""
    return {key: value[index] for key, value in columns.items()} if columns else {}


def duplicate_pairs(geoms_a: np.ndarray, geoms_b: np.ndarray, iou: float,
                    ios: float) -> np.ndarray:
    """Whether each pair (a[i], b[i]) has IoU > ``iou`` or intersection/smaller area > ``ios``."""
    # bounding boxes bound the intersection: most pairs are ruled out before intersecting
    area_a, area_b = shapely.area(geoms_a), shapely.area(geoms_b)
    ba, bb = shapely.bounds(geoms_a), shapely.bounds(geoms_b)
    width = np.minimum(ba[:, 2], bb[:, 2]) - np.maximum(ba[:, 0], bb[:, 0])
    height = np.minimum(ba[:, 3], bb[:, 3]) - np.maximum(ba[:, 1], bb[:, 1])
    smaller = np.minimum(area_a, area_b)
    bound = np.minimum(np.clip(width, 0, None) * np.clip(height, 0, None), smaller)
    maybe = (_ratio(bound, area_a + area_b - bound) > iou) | (_ratio(bound, smaller) > ios)
    result = np.zeros(len(area_a), bool)
    if maybe.any():
        inter = shapely.area(shapely.intersection(geoms_a[maybe], geoms_b[maybe]))
        union = area_a[maybe] + area_b[maybe] - inter
        result[maybe] = (_ratio(inter, union) > iou) | (_ratio(inter, smaller[maybe]) > ios)
    return result


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


class DuplicateMerger:
    """Streamed greedy duplicate suppression over candidate columns.

    Columns: ``geometry`` (shapely, map coordinates), ``score``, ``class_id`` and ``extent``
    (``(n, 4)`` raster pixel rows/columns ``row0, col0, row1, col1``, ends exclusive); any
    further columns are carried along.
    """

    def __init__(self, iou: float = 0.5, ios: float = 0.8, per_class: bool = False) -> None:
        self.iou, self.ios, self.per_class = iou, ios, per_class
        self.active: Columns = {}
        self.neighbours: dict[int, list[int]] = defaultdict(list)
        self.next_uid = 0
        self.duplicates = 0

    def feed(self, batch: Columns, future_row: float) -> tuple[Columns, float]:
        """Add candidates (all later ones start at row >= future_row); (kept, first open row)."""
        # kept: candidates kept for good, best first; first open row: the first raster row an
        # undecided candidate may still cover (future_row when none is undecided)
        n_old = len(self.active["geometry"]) if self.active else 0
        if batch and len(batch["geometry"]):
            uid = np.arange(self.next_uid, self.next_uid + len(batch["geometry"]))
            self.next_uid += len(uid)
            self.active = concat_columns([self.active, {**batch, "uid": uid}])
            self._link(n_old)
        if not self.active:
            return {}, future_row
        status = self._decide(future_row)
        kept = take(self.active, status == KEPT)
        self.duplicates += int(np.count_nonzero(status == REMOVED))
        for uid in self.active["uid"][status != OPEN].tolist():
            self.neighbours.pop(uid, None)
        self.active = take(self.active, status == OPEN)
        top = self.active["extent"][:, 0].min() if len(self.active["uid"]) else future_row
        order = np.argsort(-kept["score"], kind="stable") if kept else np.zeros(0, np.int64)
        return take(kept, order), min(float(top), future_row)

    def _link(self, n_old: int) -> None:
        """Record the duplicate pairs between the new candidates and all active ones."""
        geoms = self.active["geometry"]
        new, other = shapely.STRtree(geoms).query(geoms[n_old:])
        new += n_old
        pairs = other < new  # each pair once, no self pairs
        if self.per_class:
            pairs &= self.active["class_id"][new] == self.active["class_id"][other]
        new, other = new[pairs], other[pairs]
        dup = duplicate_pairs(geoms[new], geoms[other], self.iou, self.ios)
        uid = self.active["uid"]
        for a, b in zip(uid[new[dup]].tolist(), uid[other[dup]].tolist()):
            self.neighbours[a].append(b)
            self.neighbours[b].append(a)

    def _decide(self, future_row: float) -> np.ndarray:
        """Status of every active candidate, in one descending-score pass."""
        uid, score = self.active["uid"], self.active["score"]
        complete = (self.active["extent"][:, 2] <= future_row).tolist()
        order = np.lexsort((uid, -score))
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        position = dict(zip(uid.tolist(), range(len(uid))))
        status = [OPEN] * len(uid)
        uids, ranks = uid.tolist(), rank.tolist()
        for i in order.tolist():
            state = KEPT if complete[i] else OPEN
            for other in self.neighbours.get(uids[i], ()):
                j = position.get(other)
                if j is None or ranks[j] > ranks[i]:
                    continue  # removed earlier for good, or lower score
                if status[j] == KEPT:
                    state = REMOVED
                    break
                if status[j] == OPEN:
                    state = OPEN
            status[i] = state
        return np.array(status)

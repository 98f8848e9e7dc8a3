"""Spatial folds: overlapping tiles never end up in two different folds.

Tiles are grouped into connected groups (tiles that overlap, directly or through others).
With at least k groups, whole groups go to folds, largest first into the smallest fold.
Otherwise the grid is cut into blocks of tiles, blocks go to folds the same way, and a tile
that still overlaps a tile of another fold becomes a buffer tile (fold -1): never tested on,
and trained on only where it overlaps no held-out tile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def overlap_pairs(rows: np.ndarray, cols: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Index pairs of square tiles (top-left rows/cols, side ``size``) that share pixels."""
    order = np.lexsort((cols, rows))
    pairs = []
    for k, i in enumerate(order):
        for j in order[k + 1:]:
            if rows[j] >= rows[i] + size:
                break
            if abs(int(cols[j]) - int(cols[i])) < size:
                pairs.append((int(i), int(j)))
    return pairs


def _components(n: int, pairs: Iterable[tuple[int, int]]) -> np.ndarray:
    parent = np.arange(n)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(a) for a in range(n)])


def _balance(groups: np.ndarray, k: int) -> np.ndarray:
    """Assign each group to a fold, largest groups first into the emptiest fold."""
    labels, counts = np.unique(groups, return_counts=True)
    sizes = np.zeros(k, dtype=np.int64)
    fold_of = {}
    for label in labels[np.lexsort((labels, -counts))]:
        target = int(np.argmin(sizes))
        fold_of[label] = target
        sizes[target] += counts[labels == label][0]
    return np.array([fold_of[g] for g in groups], dtype=np.int16)


def assign_folds(rows: np.ndarray, cols: np.ndarray, size: int, k: int,
                 block: int | None = None) -> np.ndarray:
    """Fold per tile (0..k-1, or -1 for buffer tiles)."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    n = len(rows)
    if n == 0 or k <= 1:
        return np.zeros(n, dtype=np.int16)
    pairs = overlap_pairs(rows, cols, size)
    groups = _components(n, pairs)
    if len(np.unique(groups)) >= k:
        return _balance(groups, k)
    if block is None:  # about 2 blocks per fold, square in pixels
        extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + size
        block = max(size, int(extent / np.ceil(np.sqrt(2 * k))))
    brow = (rows - rows.min() + size // 2) // block
    bcol = (cols - cols.min() + size // 2) // block
    folds = _balance(brow * (bcol.max() + 1) + bcol, k)
    sizes = np.bincount(folds, minlength=k)
    for a, b in pairs:  # demote the tile of the larger fold
        if folds[a] >= 0 and folds[b] >= 0 and folds[a] != folds[b]:
            loser = a if sizes[folds[a]] >= sizes[folds[b]] else b
            sizes[folds[loser]] -= 1
            folds[loser] = -1
    return folds


def split(folds: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int,
          held_out: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of (training, held-out) tiles: training tiles overlap no held-out tile."""
    folds = np.asarray(folds)
    test = np.flatnonzero(np.isin(folds, list(held_out)))
    mask = np.isin(folds, list(held_out))
    blocked = np.zeros(len(folds), dtype=bool)
    rows, cols = np.asarray(rows), np.asarray(cols)
    for t in test:
        blocked |= (np.abs(rows - rows[t]) < size) & (np.abs(cols - cols[t]) < size)
    train = np.flatnonzero(~mask & ~blocked)
    return train, test


def assign_scene_folds(rows: np.ndarray, cols: np.ndarray, scenes: np.ndarray, size: int, k: int,
                       by_scene: bool = False) -> np.ndarray:
    """Fold per tile over several scenes (``scenes``: the scene index of each tile).

    By tiles: each scene is split into k spatial folds on its own (as :func:`assign_folds`),
    the largest scenes first, each scene's largest fold going to the emptiest overall fold,
    so every fold gets tiles of every large-enough scene. By scenes: whole scenes go to
    folds, largest first into the emptiest fold.
    """
    rows, cols, scenes = np.asarray(rows), np.asarray(cols), np.asarray(scenes)
    if by_scene:
        return _balance(scenes, k) if len(scenes) and k > 1 else np.zeros(len(scenes), np.int16)
    labels, counts = np.unique(scenes, return_counts=True)
    if len(labels) <= 1:
        return assign_folds(rows, cols, size, k)
    folds = np.zeros(len(rows), dtype=np.int16)
    totals = np.zeros(k, dtype=np.int64)
    for label in labels[np.lexsort((labels, -counts))]:
        idx = np.flatnonzero(scenes == label)
        own = assign_folds(rows[idx], cols[idx], size, k)
        sizes = np.bincount(own[own >= 0], minlength=k)
        target = {int(f): int(g) for f, g in zip(np.argsort(-sizes, kind="stable"),
                                                 np.argsort(totals, kind="stable"))}
        folds[idx] = [target[f] if f >= 0 else -1 for f in own]
        totals += np.bincount(folds[idx][folds[idx] >= 0], minlength=k)
    return folds


def most_folds(rows: np.ndarray, cols: np.ndarray, scenes: np.ndarray, size: int, k: int,
               by_scene: bool = False) -> int:
    """The largest fold count <= ``k`` that leaves no fold without tiles (0: no tiles)."""
    for n in range(k, 0, -1):
        folds = assign_scene_folds(rows, cols, scenes, size, n, by_scene)
        if len(folds) and np.all(np.bincount(folds[folds >= 0], minlength=n) > 0):
            return n
    return 0

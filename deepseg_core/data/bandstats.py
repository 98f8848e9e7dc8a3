"""Per-band statistics in one streaming pass (Welford within a chunk, Chan et al. across chunks).

8- and 16-bit integer bands go through exact histograms, which also give percentiles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


class BandStats:
    """Running count, mean, M2, min and max per band, over valid pixels only."""

    def __init__(self, nbands: int) -> None:
        self.count = np.zeros(nbands, dtype=np.int64)
        self.mean = np.zeros(nbands, dtype=np.float64)
        self.m2 = np.zeros(nbands, dtype=np.float64)
        self.min = np.full(nbands, np.inf)
        self.max = np.full(nbands, -np.inf)
        self.hist: list[np.ndarray] | None = None  # per band, integer data only
        self.offset = 0

    def update(self, pixels: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add a chunk ``(bands, rows, cols)``; ``valid`` ``(rows, cols)`` selects pixels."""
        flat = pixels.reshape(pixels.shape[0], -1)
        if valid is not None and not valid.all():
            flat = flat[:, valid.reshape(-1).astype(bool)]
        n = flat.shape[1]
        if n == 0:
            return
        if flat.dtype.kind in "ui" and flat.dtype.itemsize <= 2:
            self.offset = -int(np.iinfo(flat.dtype).min)
            hists = [np.bincount(b.astype(np.int32) + self.offset if self.offset else b)
                     for b in flat]
            self._add_hist(hists)
            self._merge(n, *_moments(hists, self.offset))
            return
        values = flat.astype(np.float64)
        mean = values.mean(axis=1)
        m2 = ((values - mean[:, None]) ** 2).sum(axis=1)
        self._merge(n, mean, m2, values.min(axis=1), values.max(axis=1))

    def _merge(self, n: int | np.ndarray, mean: np.ndarray, m2: np.ndarray, vmin: np.ndarray,
               vmax: np.ndarray) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta ** 2 * (self.count * n / total)
        self.count = total
        self.min = np.minimum(self.min, vmin)
        self.max = np.maximum(self.max, vmax)

    def _add_hist(self, hists: Sequence[np.ndarray]) -> None:
        if self.hist is None:
            self.hist = [np.zeros(0, np.int64) for _ in hists]
        hist = self.hist
        for b, h in enumerate(hists):
            if len(h) > len(hist[b]):
                hist[b] = np.pad(hist[b], (0, len(h) - len(hist[b])))
            hist[b][:len(h)] += h

    def percentiles(self, q: Iterable[float]) -> np.ndarray | None:
        """Per band percentiles ``q`` (0..100) of integer data, from the histograms."""
        if self.hist is None:
            return None
        out = []
        for h in self.hist:
            cdf = np.cumsum(h) / max(h.sum(), 1)
            out.append([int(np.searchsorted(cdf, p / 100.0)) - self.offset for p in q])
        return np.array(out, dtype=np.float64)

    def merge(self, other: BandStats) -> None:
        """Combine with statistics of a disjoint set of pixels (Chan's parallel formula)."""
        if other.count.max(initial=0) == 0:
            return
        if other.hist is not None:
            self.offset = other.offset
            self._add_hist(other.hist)
        self._merge(other.count, other.mean, other.m2, other.min, other.max)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per band."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(np.where(self.count > 0, self.m2 / np.maximum(self.count, 1), 0.0))

    def as_dict(self) -> dict[str, np.ndarray]:
        """The statistics the store keeps (``/stats``), percentiles for integer data."""
        out = {"count": self.count, "mean": self.mean, "std": self.std,
               "min": self.min, "max": self.max}
        pct = self.percentiles((2, 98))
        if pct is not None:
            out["p2"], out["p98"] = pct[:, 0], pct[:, 1]
        return out


def _moments(hists: Sequence[np.ndarray], offset: int,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, M2, min and max per band from per-band histograms of offset integers."""
    means, m2s, mins, maxs = [], [], [], []
    for hist in hists:
        present = np.flatnonzero(hist)
        counts = hist[present].astype(np.float64)
        values = present.astype(np.float64) - offset
        mean = (counts * values).sum() / counts.sum()
        means.append(mean)
        m2s.append((counts * (values - mean) ** 2).sum())
        mins.append(values[0])
        maxs.append(values[-1])
    return np.array(means), np.array(m2s), np.array(mins), np.array(maxs)


def normalizer(stats: Mapping[str, ArrayLike]) -> Callable[[np.ndarray], np.ndarray]:
    """Function mapping raw tiles (..., bands) to zero mean / unit std per band."""
    mean = np.asarray(stats["mean"], dtype=np.float32)
    std = np.asarray(stats["std"], dtype=np.float32)
    std = np.where(std > 0, std, 1.0).astype(np.float32)

    def normalize(images: np.ndarray) -> np.ndarray:
        return (images.astype(np.float32) - mean) / std

    return normalize

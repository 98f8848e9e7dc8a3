"""Band statistics and direct histograms, computed block by block from a written band."""

from __future__ import annotations

import math

import h5py
import numpy as np

from .layout import blocks

MAX_HISTOGRAM_BINS = 1 << 20  # direct histograms of thematic bands up to this many classes


class RunningStats:
    """Count, min, max, mean and (population) variance merged block by block (Chan et al.)."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.min, self.max = math.inf, -math.inf

    def add(self, values: np.ndarray) -> None:
        """Merge a 1-D array of valid values."""
        if not values.size:
            return
        x = values.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # values near float64's limits
            n, mean = x.size, float(x.mean())
            m2 = float(((x - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))

    def metadata(self) -> dict[str, str]:
        """GDAL's STATISTICS_* items (empty when no valid pixel was seen)."""
        if not self.count:
            return {}
        return {"STATISTICS_MINIMUM": _g(self.min), "STATISTICS_MAXIMUM": _g(self.max),
                "STATISTICS_MEAN": _g(self.mean),
                "STATISTICS_STDDEV": _g(math.sqrt(self.m2 / self.count))}


def _g(value: float) -> str:
    return f"{value:.14g}"


def valid_values(block: np.ndarray, nodata) -> np.ndarray:
    """The values of a block that are neither nodata nor NaN/inf, flattened."""
    values = block.reshape(-1)
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        values = values[values != nodata]
    return values


def band_statistics(ds: h5py.Dataset, nodata, block: int,
                    histogram: bool) -> tuple[dict[str, str], np.ndarray | None]:
    """Statistics metadata of a 2-D dataset and, when asked for an integer band, its direct
    histogram (count of each value 0..max; None when values are negative or too large)."""
    stats = RunningStats()
    counts = np.zeros(0, dtype=np.int64) if histogram and ds.dtype.kind in "iu" else None
    for rows, cols in blocks(*ds.shape, block):
        values = valid_values(ds[rows, cols], nodata)
        stats.add(values)
        if counts is not None and values.size:
            if stats.min < 0 or stats.max >= MAX_HISTOGRAM_BINS:
                counts = None
                continue
            found = np.bincount(values.astype(np.int64), minlength=counts.size)
            found[:counts.size] += counts
            counts = found
    return stats.metadata(), counts


def histogram_metadata(bins: int) -> dict[str, str]:
    """The band metadata GDAL writes beside a direct 'Histogram' column of ``bins`` rows.

    HISTOMIN/HISTOMAX are the values of the first and last bin: GDAL's KEA driver derives the
    bin width as (max - min) / (bins - 1), so HISTOMAX = bins - 1 gives width 1 (one value
    per bin)."""
    return {"STATISTICS_HISTOMIN": "0", "STATISTICS_HISTOMAX": str(max(bins - 1, 0)),
            "STATISTICS_HISTONUMBINS": str(bins), "STATISTICS_HISTOBINFUNCTION": "direct"}

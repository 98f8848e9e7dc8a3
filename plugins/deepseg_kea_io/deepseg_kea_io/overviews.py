"""Overviews built block by block from a written band: nearest or (nodata-aware) average."""

from __future__ import annotations

import h5py
import numpy as np

from .layout import blocks, create_image


def overview_shape(height: int, width: int, factor: int) -> tuple[int, int]:
    """(rows, cols) of the overview for ``factor``: integer division, as GDAL's KEA driver."""
    return max(1, height // factor), max(1, width // factor)


def build_overviews(band: h5py.Group, factors: list[int], method: str, nodata, block: int,
                    deflate: int) -> None:
    """``OVERVIEWS/OVERVIEW1..n`` of a band group, one per factor (finest first)."""
    src = band["DATA"]
    group = band.require_group("OVERVIEWS")
    for level, factor in enumerate(sorted(factors), start=1):
        shape = overview_shape(*src.shape, factor)
        size = max(1, min(block, *shape))
        dst = create_image(group, f"OVERVIEW{level}", shape, src.dtype, size, deflate)
        fill_overview(src, dst, factor, method, nodata, block)


def fill_overview(src: h5py.Dataset, dst: h5py.Dataset, factor: int, method: str, nodata,
                  block: int) -> None:
    """Compute ``dst`` chunk by chunk, reading about ``block`` x ``block`` source pixels at once."""
    step = max(1, block // factor)  # overview pixels per side computed from one source read
    for rows, cols in blocks(*dst.shape, dst.chunks[0]):
        tile = np.empty((rows.stop - rows.start, cols.stop - cols.start), dtype=dst.dtype)
        for r in range(rows.start, rows.stop, step):
            for c in range(cols.start, cols.stop, step):
                h, w = min(step, rows.stop - r), min(step, cols.stop - c)
                out = tile[r - rows.start:r - rows.start + h, c - cols.start:c - cols.start + w]
                if method == "nearest":
                    half = factor // 2
                    out[...] = src[r * factor + half:(r + h) * factor:factor,
                                   c * factor + half:(c + w) * factor:factor]
                else:
                    part = src[r * factor:(r + h) * factor, c * factor:(c + w) * factor]
                    out[...] = average(part, factor, nodata)
        dst[rows, cols] = tile


def average(part: np.ndarray, factor: int, nodata) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` cell ignoring nodata and NaN; all invalid: nodata
    (NaN for floats without nodata, else 0). Integers are rounded half up."""
    h, w = part.shape[0] // factor, part.shape[1] // factor
    cells = part[:h * factor, :w * factor].reshape(h, factor, w, factor).astype(np.float64)
    valid = ~np.isnan(cells)
    if nodata is not None and not np.isnan(nodata):
        valid &= cells != nodata
    count = valid.sum(axis=(1, 3))
    total = np.where(valid, cells, 0.0).sum(axis=(1, 3))
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    if part.dtype.kind in "iu":
        limits = np.iinfo(part.dtype)
        mean = np.clip(np.floor(mean + 0.5), limits.min, limits.max)
    empty = nodata if nodata is not None else (np.nan if part.dtype.kind == "f" else 0)
    return np.where(count > 0, mean, empty).astype(part.dtype)

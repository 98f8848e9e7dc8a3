"""Tile cores: the part of each tile that owns its pixels, so the cores partition the raster.

Between two neighbouring tiles the boundary is the middle of their overlap; tiles at the
raster edge extend their core to the edge. Works for any tiler whose windows lie on rows and
columns of origins (a regular grid, or one whose last tile snaps to the edge). The cores of a
:class:`~deepseg_core.geo.grid.TileGrid` are a TileGrid too, computed from its
origins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..contracts.raster import Window
from .grid import TileGrid


def _bounds(origins: np.ndarray, size: int, extent: int) -> dict[int, tuple[int, int]]:
    uniq = np.unique(origins)
    out = {}
    for i, o in enumerate(uniq):
        lo = 0 if i == 0 else (int(uniq[i - 1]) + size + int(o)) // 2
        hi = extent if i == len(uniq) - 1 else (int(o) + size + int(uniq[i + 1])) // 2
        out[int(o)] = (max(lo, 0), min(hi, extent))
    return out


def tile_cores(windows: Sequence[Window], width: int, height: int) -> Sequence[Window]:
    """The core of every window (same order)."""
    if not windows:
        return []
    if isinstance(windows, TileGrid):
        by_row = _bounds(np.array([r for r, _ in windows.rows]), windows.rows[0][1], height)
        by_col = _bounds(np.array([c for c, _ in windows.cols]), windows.cols[0][1], width)
        return TileGrid([_span(by_row[r]) for r, _ in windows.rows],
                    [_span(by_col[c]) for c, _ in windows.cols])
    size_r, size_c = windows[0].height, windows[0].width
    rows = _bounds(np.array([w.row_off for w in windows]), size_r, height)
    cols = _bounds(np.array([w.col_off for w in windows]), size_c, width)
    cores = []
    for w in windows:
        (r0, r1), (c0, c1) = rows[w.row_off], cols[w.col_off]
        cores.append(Window(r0, c0, max(r1 - r0, 0), max(c1 - c0, 0)))
    return cores


def _span(bounds: tuple[int, int]) -> tuple[int, int]:
    return bounds[0], max(bounds[1] - bounds[0], 0)


def relative(core: Window, tile: Window) -> tuple[slice, slice]:
    """Slices of ``core`` inside the array of ``tile``."""
    return (slice(core.row_off - tile.row_off, core.row_off - tile.row_off + core.height),
            slice(core.col_off - tile.col_off, core.col_off - tile.col_off + core.width))

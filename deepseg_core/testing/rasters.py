"""Writer plugins' tests: a raster written window by window, as predict writes its outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..contracts.raster import RasterInfo, Window


def write_in_windows(writer: Any, path: Path, info: RasterInfo, pixels: np.ndarray,
                     tile: int, **options: Any) -> Path:
    """Write ``pixels`` (bands, rows, cols) through ``writer.create`` in ``tile`` x ``tile``
    windows, row by row (the last ones clipped: choose ``tile`` not to align with chunks)."""
    with writer.create(path, info, **options) as sink:
        for r in range(0, info.height, tile):
            for c in range(0, info.width, tile):
                window = Window(r, c, tile, tile).clip(info.height, info.width)
                sink.write(pixels[(slice(None), *window.slices)], window)
    return path

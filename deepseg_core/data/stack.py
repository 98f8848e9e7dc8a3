"""Image sources stacked band-wise on one grid, read window by window.

A source is one raster or a mosaic of adjacent/overlapping rasters (a list or glob). Sources
on the grid's CRS and pixel lattice are read directly (exact pixels); others are warped per
window with their resampling. Nothing here holds more than one window of pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine

from ..config import expand_paths
from ..contracts.raster import RasterSource, Window
from ..errors import DeepSegError

if TYPE_CHECKING:
    from typing import Self

    from numpy.typing import DTypeLike

    from ..config.base import ImageSource
    from ..plugins.registry import Registry


@dataclass(frozen=True)
class Grid:
    """The experiment's pixel grid: CRS (WKT), geotransform and size."""

    crs: str | None
    transform: Affine
    width: int
    height: int

    def window_transform(self, window: Window) -> Affine:
        """The geotransform of a window's top-left pixel."""
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def window_bounds(self, window: Window) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of a window in grid CRS units."""
        t = self.window_transform(window)
        x0, y0 = t @ (0, 0)
        x1, y1 = t @ (window.width, window.height)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def same_crs(a: object, b: object) -> bool:
    """Whether two CRS (WKT, EPSG code, ...) are the same; two unknown ones are."""
    from rasterio.crs import CRS

    if not a or not b:
        return not a and not b
    return CRS.from_user_input(a) == CRS.from_user_input(b)


def invalid_mask(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixels where every band is nodata (or NaN): ``(rows, cols)`` bool."""
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        bad = np.all(data == nodata, axis=0)
    else:
        bad = np.zeros(data.shape[1:], dtype=bool)
    if data.dtype.kind == "f":
        bad |= np.all(np.isnan(data), axis=0)
    return bad


class _File:
    """One open raster of a source and how it maps onto the grid."""

    def __init__(self, handle: RasterSource, grid: Grid, bands: list[int] | None,
                 nodata: float | None, resampling: str, reproject: bool, where: str) -> None:
        self.handle, self.info = handle, handle.info
        self.bands = bands or list(range(1, self.info.count + 1))
        if max(self.bands) > self.info.count or min(self.bands) < 1:
            raise DeepSegError(f"{where}.bands: {self.bands} out of range for "
                               f"{handle.path} with {self.info.count} bands")
        self.nodata = self.info.nodata if nodata is None else nodata
        self.resampling = resampling
        if not same_crs(self.info.crs, grid.crs) and not reproject:
            raise DeepSegError(f"{where}: {handle.path} has another CRS than the grid; set "
                               f"'reproject: true' on this source to warp it")
        self.offset = self._offset(grid)

    def _offset(self, grid: Grid) -> tuple[int, int] | None:
        """Integer (row, col) of the grid origin in this file, if it lies on the grid lattice."""
        if not same_crs(self.info.crs, grid.crs):
            return None
        g, f = grid.transform, self.info.transform
        if not all(math.isclose(a, b, rel_tol=1e-9) for a, b in ((g.a, f.a), (g.e, f.e))) \
                or g.b or g.d or f.b or f.d:
            return None
        col, row = (~f) @ (g.c, g.f)
        if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            return None
        return round(row), round(col)

    def read(self, grid: Grid, window: Window,
             dtype: DTypeLike) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of this file on the grid window and their validity."""
        if self.offset is not None:
            shifted = window.shift(*self.offset)
            inside = shifted.clip(self.info.height, self.info.width)
            out = np.zeros((len(self.bands), window.height, window.width), dtype)
            valid = np.zeros((window.height, window.width), dtype=bool)
            if inside.height == 0 or inside.width == 0:
                return out, valid
            # only the file's own pixels are valid: a file without nodata would otherwise
            # turn the padding of a window reaching past its edge into valid zeros
            data = self.handle.read(inside, self.bands)
            rows = slice(inside.row_off - shifted.row_off, inside.row_off - shifted.row_off
                         + inside.height)
            cols = slice(inside.col_off - shifted.col_off, inside.col_off - shifted.col_off
                         + inside.width)
            out[:, rows, cols] = data
            valid[rows, cols] = ~invalid_mask(data, self.nodata)
            return out, valid
        return self._warp(grid, window, dtype)

    def _warp(self, grid: Grid, window: Window,
              dtype: DTypeLike) -> tuple[np.ndarray, np.ndarray]:
        from rasterio.enums import Resampling
        from rasterio.warp import reproject, transform_bounds

        out = np.zeros((len(self.bands), window.height, window.width), dtype=dtype)
        valid = np.zeros((window.height, window.width), dtype=bool)
        bounds = transform_bounds(grid.crs, self.info.crs, *grid.window_bounds(window))
        inv = ~self.info.transform
        cols, rows = zip(*[inv @ (x, y) for x in bounds[::2] for y in bounds[1::2]])
        r0, c0 = max(math.floor(min(rows)) - 2, 0), max(math.floor(min(cols)) - 2, 0)
        r1 = min(math.ceil(max(rows)) + 2, self.info.height)
        c1 = min(math.ceil(max(cols)) + 2, self.info.width)
        if r1 <= r0 or c1 <= c0:
            return out, valid
        src_win = Window(r0, c0, r1 - r0, c1 - c0)
        data = self.handle.read(src_win, self.bands)
        ok = (~invalid_mask(data, self.nodata)).astype("uint8")
        kw = dict(src_transform=self.info.window_transform(src_win), src_crs=self.info.crs,
                  dst_transform=grid.window_transform(window), dst_crs=grid.crs)
        reproject(data, out, resampling=Resampling[self.resampling], src_nodata=self.nodata,
                  **kw)
        mask = np.zeros((window.height, window.width), dtype="uint8")
        reproject(ok, mask, resampling=Resampling.nearest, **kw)
        return out, mask.astype(bool)


class ImageStack:
    """The experiment's image sources stacked band-wise; ``read(window)`` -> (data, valid)."""

    def __init__(self, images: Sequence[ImageSource], registry: Registry, crs: str | None = None,
                 resolution: float | None = None, key: str = "images",
                 grid: Grid | None = None) -> None:
        self._handles: list[RasterSource] = []
        self.sources: list[tuple[ImageSource, list[_File]]] = []
        self.key = key
        self._args = (images, registry, crs, resolution)
        try:
            opened = [[self._open(registry, p, f"{key}[{i}]") for p in expand_paths(src.path)]
                      for i, src in enumerate(images)]
            self.grid = grid or self._grid(opened[0], crs, resolution)
            for i, (src, handles) in enumerate(zip(images, opened)):
                files = [_File(h, self.grid, src.bands, src.nodata, src.resampling,
                               getattr(src, "reproject", False), f"{key}[{i}]") for h in handles]
                self.sources.append((src, files))
        except Exception:
            self.close()
            raise
        counts = [len(files[0].bands) for _, files in self.sources]
        self.nbands = sum(counts)
        self.dtype = np.result_type(*[files[0].info.dtype for _, files in self.sources])
        self.band_names = [f"{src.name or Path(files[0].handle.path).stem}:{b}"
                           for src, files in self.sources for b in files[0].bands]

    def _open(self, registry: Registry, path: str, where: str) -> RasterSource:
        try:
            handle = registry.reader_for(path).open(path)
        except DeepSegError as exc:
            raise DeepSegError(f"{where}: {exc}") from None
        self._handles.append(handle)
        return handle

    def _grid(self, handles: list[RasterSource], crs: str | None,
              resolution: float | None) -> Grid:
        from rasterio.warp import transform_bounds

        first = handles[0].info
        same = crs is None or same_crs(crs, first.crs)
        crs = crs or first.crs
        # without a resolution the first image's own (maybe non-square) pixels are the grid's
        xres, yres = (resolution, resolution) if resolution or not same else first.resolution
        xres, yres = xres or first.resolution[0], yres or first.resolution[0]
        boxes = []
        for h in handles:
            i = h.info
            x0, y1 = i.transform @ (0, 0)
            x1, y0 = i.transform @ (i.width, i.height)
            box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            boxes.append(box if same_crs(i.crs, crs) else transform_bounds(i.crs, crs, *box))
        left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
        right, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
        width = max(1, round((right - left) / xres))
        height = max(1, round((top - bottom) / yres))
        return Grid(crs, Affine(xres, 0, left, 0, -yres, top), width, height)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Stacked pixels ``(nbands, rows, cols)`` and where every source is valid."""
        parts, valid = [], np.ones((window.height, window.width), dtype=bool)
        for _, files in self.sources:
            data, have = files[0].read(self.grid, window, self.dtype)
            for f in files[1:]:  # mosaic: the first file with data wins
                if have.all():
                    break
                part, ok = f.read(self.grid, window, self.dtype)
                new = ok & ~have
                data[:, new] = part[:, new]
                have |= new
            parts.append(data)
            valid &= have
        stacked = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        if not valid.all():
            stacked[:, ~valid] = 0
        return stacked, valid

    def reopen(self) -> ImageStack:
        """The same stack on new file handles (one per thread: GDAL handles are not shared)."""
        return ImageStack(*self._args, key=self.key, grid=self.grid)

    def close(self) -> None:
        """Close every file of the stack."""
        for h in self._handles:
            h.close()
        self._handles = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

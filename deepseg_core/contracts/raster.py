"""Raster I/O contract shared by the stages and every reader/writer plugin.

A *reader* is registered with ``registry.add_reader(name, reader)``; ``reader`` is an
object with

- ``extensions``: tuple of lower-case file suffixes it claims (``(".kea",)``); empty for
  a catch-all reader such as the GDAL one;
- ``can_open(path) -> bool``: cheap check (signature, suffix);
- ``open(path) -> RasterSource``.

A *writer* is registered with ``registry.add_writer(name, writer)``; ``writer`` has

- ``extensions``: suffixes it writes by default (``(".tif", ".tiff")``);
- ``create(path, info: RasterInfo, **options) -> RasterSink``.

A *tiler* is registered with ``registry.add_tiler(name, tiler)``; ``tiler(width, height,
tilesize, overlap) -> Sequence[Window]`` gives the tiles covering a raster, row-major: a list,
or a sequence that computes them (the built-in grid's,
:class:`deepseg_core.geo.grid.TileGrid`, so a raster of millions of tiles costs no list of
them).

Arrays are always band-first ``(bands, rows, cols)``; windows are pixel windows of the
raster they belong to.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from affine import Affine

from ..errors import DeepSegError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType
    from typing import Self

    from _typeshed import StrPath
    from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Window:
    """A pixel window: first row/column and size. May reach outside the raster (padding)."""

    row_off: int
    col_off: int
    height: int
    width: int

    def clip(self, height: int, width: int) -> Window:
        """The part of this window that lies inside a raster of the given size."""
        r0, c0 = max(self.row_off, 0), max(self.col_off, 0)
        r1 = min(self.row_off + self.height, height)
        c1 = min(self.col_off + self.width, width)
        return Window(r0, c0, max(r1 - r0, 0), max(c1 - c0, 0))

    def shift(self, drow: int, dcol: int) -> Window:
        """This window moved by (drow, dcol)."""
        return Window(self.row_off + drow, self.col_off + dcol, self.height, self.width)

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices (only meaningful for a window inside its array)."""
        return (slice(self.row_off, self.row_off + self.height),
                slice(self.col_off, self.col_off + self.width))


@dataclass(frozen=True)
class RasterInfo:
    """Everything about a raster except its pixels."""

    width: int
    height: int
    count: int
    dtype: str
    crs: str | None = None  # WKT (or any string rasterio's CRS accepts); None = unknown
    transform: Affine = Affine.identity()
    nodata: float | None = None
    descriptions: tuple[str | None, ...] = ()
    colormap: dict[int, tuple[int, int, int, int]] | None = None  # band 1, value -> RGBA
    class_names: tuple[str, ...] | None = None  # band 1, index = pixel value
    thematic: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    def with_(self, **changes: Any) -> RasterInfo:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def window_transform(self, window: Window) -> Affine:
        """The geotransform of a window's top-left pixel."""
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size (x, y) as positive numbers."""
        return (abs(self.transform.a), abs(self.transform.e))


class RasterSource(Protocol):
    """An open raster: ``info`` plus windowed reads. Use as a context manager."""

    path: Path
    info: RasterInfo

    def read(self, window: Window | None = None, bands: list[int] | None = None) -> np.ndarray:
        """Pixels ``(bands, rows, cols)`` of ``window`` (whole raster when None); bands 1-based.
        Parts of the window outside the raster are filled with nodata (or 0)."""

    def close(self) -> None: ...

    def __enter__(self) -> RasterSource: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class RasterSink(Protocol):
    """A raster being written window by window. ``close()`` finalizes it."""

    path: Path
    info: RasterInfo

    def write(self, array: np.ndarray, window: Window) -> None:
        """Write ``(bands, rows, cols)`` pixels at ``window`` (inside the raster)."""

    def close(self) -> None: ...

    def __enter__(self) -> RasterSink: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class RasterReader(Protocol):
    """What ``registry.add_reader(name, reader)`` expects of ``reader`` (module docstring)."""

    extensions: tuple[str, ...]

    def can_open(self, path: StrPath) -> bool: ...

    def open(self, path: StrPath) -> RasterSource: ...


class RasterWriter(Protocol):
    """What ``registry.add_writer(name, writer)`` expects of ``writer`` (module docstring);
    it may also offer ``add_attribute_table(path, columns)``, and ``threads_option``: the name
    of its ``create`` option that lets it compress with that many threads (the GeoTIFF and
    COG writers': ``num_threads``); a merge with several threads passes it."""

    extensions: tuple[str, ...]

    def create(self, path: StrPath, info: RasterInfo, **options: Any) -> RasterSink: ...


class _Named:
    """``ClassName('path')`` as the repr of a source or sink."""

    path: Path
    info: RasterInfo

    if TYPE_CHECKING:  # every subclass implements close()
        def close(self) -> None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class SourceBase(_Named):
    """Context-manager behaviour for sources: ``close()`` on leaving."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SinkBase(_Named):
    """Context-manager behaviour for sinks: ``close()`` on success, ``abort()`` on an error
    (an aborted sink releases its file; the caller's temporary name is then deleted)."""

    def abort(self) -> None:
        self.close()

    def checked(self, array: ArrayLike, window: Window) -> np.ndarray:
        """``array`` as ``(bands, rows, cols)`` after checking it fits ``window`` in the raster."""
        array = np.asarray(array)
        array = array[None] if array.ndim == 2 else array
        if array.shape != (self.info.count, window.height, window.width):
            raise DeepSegError(f"{self.path}: array of shape {array.shape} does not fit {window} "
                               f"with {self.info.count} band(s)")
        if window.clip(self.info.height, self.info.width) != window:
            raise DeepSegError(f"{self.path}: {window} reaches outside the "
                               f"{self.info.height} x {self.info.width} raster")
        return array

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def parse_colour(value: str | Sequence[int]) -> tuple[int, int, int, int]:
    """'#rrggbb', '#rrggbbaa' or an [r, g, b(, a)] list to an RGBA tuple."""
    if isinstance(value, str):
        text = value.lstrip("#")
        if len(text) not in (6, 8) or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ValueError(f"colour {value!r} is not '#rrggbb' or '#rrggbbaa'")
        parts = [int(text[i:i + 2], 16) for i in range(0, len(text), 2)]
    else:
        parts = [int(v) for v in value]
        if len(parts) not in (3, 4) or not all(0 <= v <= 255 for v in parts):
            raise ValueError(f"colour {value!r} is not 3 or 4 integers in 0..255")
    if len(parts) == 3:
        parts.append(255)
    r, g, b, a = parts
    return (r, g, b, a)

"""Tile lists computed, not stored: a raster of 10^6 px on a side has 20 million tiles of
256 px, ~7 GiB as Python objects and minutes to build before the first tile is read.

A :class:`TileGrid` keeps only its row and column origins (O(rows + cols)) and computes each
window when asked; :class:`Take` and :class:`Chain` select and join parts of it by position, so a
shard's tiles, their cores and a resumed run's ``windows[start:]`` stay views. All are
read-only sequences (``len``, indexing, slicing to a view, iteration) and equal any sequence
of the same items, as the lists they replace did. A tiler may still return a list: the
functions here then select from the list.
"""

from __future__ import annotations

from abc import abstractmethod
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any, NamedTuple, TypeVar, overload

from ..contracts.raster import Window

T = TypeVar("T")
Span = tuple[int, int]  # (offset, size) of a tile row or column


class Lazy(Sequence[T]):
    """A sequence whose items are computed by ``_item(k)`` for 0 <= k < len."""

    @abstractmethod
    def _item(self, k: int) -> T: ...

    @overload
    def __getitem__(self, k: int) -> T: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[T]: ...

    def __getitem__(self, k: int | slice) -> T | Sequence[T]:
        if isinstance(k, slice):
            return View(self, range(len(self))[k])
        n = len(self)
        i = k + n if k < 0 else k
        if not 0 <= i < n:
            raise IndexError(f"index {k} out of range for {n} items")
        return self._item(i)

    def __iter__(self) -> Iterator[T]:
        return (self._item(k) for k in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so unhashable like them

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)}>"


class View(Lazy[T]):
    """Items ``base[k]`` for ``k`` in a range: a slice that copies nothing."""

    def __init__(self, base: Sequence[T], positions: range) -> None:
        self.base, self.positions = base, positions

    def __len__(self) -> int:
        return len(self.positions)

    def _item(self, k: int) -> T:
        return self.base[self.positions[k]]


class TileGrid(Lazy[Window]):
    """Windows on rows and columns, row-major: item ``i * len(cols) + j`` is the window at
    row span ``rows[i]`` and column span ``cols[j]`` (each an (offset, size) pair)."""

    def __init__(self, rows: Sequence[Span], cols: Sequence[Span]) -> None:
        self.rows, self.cols = tuple(rows), tuple(cols)

    @classmethod
    def square(cls, rows: Sequence[int], cols: Sequence[int], size: int) -> TileGrid:
        """Tiles of ``size`` px at the given row and column origins."""
        return cls([(r, size) for r in rows], [(c, size) for c in cols])

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def _item(self, k: int) -> Window:
        (r, h), (c, w) = self.rows[k // len(self.cols)], self.cols[k % len(self.cols)]
        return Window(r, c, h, w)

    def __iter__(self) -> Iterator[Window]:
        return (Window(r, c, h, w) for r, h in self.rows for c, w in self.cols)

    def __repr__(self) -> str:
        return f"<TileGrid of {len(self.rows)} x {len(self.cols)} windows>"


class Block(Lazy[int]):
    """Positions of the rows [r0, r1) x columns [c0, c1) of a grid ``ncols`` columns wide."""

    def __init__(self, rows: range, cols: range, ncols: int) -> None:
        self.rows, self.cols, self.ncols = rows, cols, ncols

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def _item(self, k: int) -> int:
        return self.rows[k // len(self.cols)] * self.ncols + self.cols[k % len(self.cols)]


class Chain(Lazy[T]):
    """Sequences one after the other."""

    def __init__(self, parts: Sequence[Sequence[T]]) -> None:
        self.parts = [p for p in parts if len(p)]
        self.ends = list(accumulate(len(p) for p in self.parts))

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def _item(self, k: int) -> T:
        i = bisect_right(self.ends, k)
        return self.parts[i][k - (self.ends[i - 1] if i else 0)]

    def __iter__(self) -> Iterator[T]:
        for part in self.parts:
            yield from part


class Take(Lazy[T]):
    """Items ``base[p]`` for ``p`` in ``positions``, in that order."""

    def __init__(self, base: Sequence[T], positions: Sequence[int]) -> None:
        self.base, self.positions = base, positions

    def __len__(self) -> int:
        return len(self.positions)

    def _item(self, k: int) -> T:
        return self.base[self.positions[k]]

    def __iter__(self) -> Iterator[T]:
        return (self.base[p] for p in self.positions)


def row_origins(windows: Sequence[Window]) -> list[int]:
    """The distinct first rows of the tile rows, top to bottom."""
    if isinstance(windows, TileGrid):
        return [r for r, _ in windows.rows]
    return sorted({w.row_off for w in windows})


def select(windows: Sequence[Window], rows: Sequence[int],
           cols: Span | None = None) -> Sequence[int]:
    """Positions, in order, of the windows whose first row is in ``rows`` and (with ``cols``,
    raster columns [first, end)) that reach into those columns; ``rows`` consecutive tile rows
    when ``windows`` is a TileGrid."""
    if not rows:
        return []
    x0, x1 = cols if cols is not None else (-2**62, 2**62)
    if isinstance(windows, TileGrid):
        first = [r for r, _ in windows.rows].index(rows[0])
        inside = [j for j, (c, w) in enumerate(windows.cols) if c < x1 and c + w > x0]
        if not inside:
            return []
        return Block(range(first, first + len(rows)), range(inside[0], inside[-1] + 1),
                     len(windows.cols))
    wanted: Any = set(rows)
    return [k for k, w in enumerate(windows)
            if w.row_off in wanted and w.col_off < x1 and w.col_off + w.width > x0]


class Stripe(NamedTuple):
    """Tiles [first, end) of a list: those that reach into raster columns [x0, x1)."""

    first: int
    end: int
    x0: int
    x1: int


def striped(windows: Sequence[Window], rows: Sequence[int], width: int,
            stripe_width: int) -> tuple[Sequence[int], tuple[Stripe, ...]]:
    """Positions of the windows on tile rows ``rows``, vertical stripe by stripe (``stripe_width``
    px, left to right, each row-major with every window that reaches into it, so a window
    across a stripe edge comes once per stripe), and the stripes."""
    edges = [(x0, min(x0 + stripe_width, width)) for x0 in range(0, width, stripe_width)]
    parts = [select(windows, rows, cols) for cols in edges]
    ends = list(accumulate(len(p) for p in parts))
    return Chain(parts), tuple(Stripe(end - len(p), end, *cols)
                               for p, end, cols in zip(parts, ends, edges))

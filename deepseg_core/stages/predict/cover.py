"""A shard's blocks must cover its rows of the raster exactly once before they are assembled:
a partial that lost blocks (written by two processes, or a bug) would otherwise leave tiles as
nodata without an error.

The check streams: blocks come in row order within a pass over a band of columns (tile cores
row by row: one pass over the whole width; blended row bands: a pass per vertical stripe, left
to right), so it keeps only the blocks that reach below the current row, never a whole shard's
list. A block above the rows checked starts the next pass, where the last one ended.
"""

from __future__ import annotations

from ...contracts.raster import Window
from ...errors import DeepSegError


class Cover:
    """Feed every block of one shard (``add``), then ``finish``: a one-line error when they
    leave a gap, overlap, or reach outside raster rows [``first``, ``end``) x columns
    [0, ``width``)."""

    def __init__(self, first: int, end: int, width: int, shard: str) -> None:
        self.first, self.end, self.width, self.shard = first, end, width, shard
        self.row = first  # rows above it are checked
        self.active: list[tuple[int, int, int]] = []  # (end row, first col, end col)
        self.left = 0  # the current pass's first column
        self.right: int | None = None  # and its end, set by its first rows

    def add(self, window: Window) -> None:
        w = window
        if w.row_off < self.row and self.row > self.first:  # the next pass
            self._check_until(self.end)
            self.left, self.right, self.row = self._right(), None, self.first
        if w.row_off < self.row or w.row_off + w.height > self.end or w.col_off < self.left \
                or w.col_off + w.width > self.width or w.height <= 0 or w.width <= 0:
            self._fail(f"a block at {w} lies outside the shard's unchecked rows "
                       f"[{self.row}, {self.end}) or columns [{self.left}, {self.width})")
        self._check_until(w.row_off)
        self.active.append((w.row_off + w.height, w.col_off, w.col_off + w.width))

    def finish(self) -> None:
        self._check_until(self.end)
        if self.end > self.first and self._right() != self.width:
            self._fail(f"a gap at rows [{self.first}, {self.end}), column {self._right()}")

    def _right(self) -> int:
        return self.left if self.right is None else self.right

    def _check_until(self, row: int) -> None:
        """Check the rows from ``self.row`` to ``row``, stripe by stripe."""
        while self.row < row:
            if not self.active:
                self._fail(f"no block covers rows [{self.row}, {row})")
            stripe_end = min(row, min(end for end, _, _ in self.active))
            edges = sorted((c0, c1) for _, c0, c1 in self.active)
            at = self.left
            for c0, c1 in edges:
                if c0 != at:
                    what = "a gap" if c0 > at else "an overlap"
                    self._fail(f"{what} at rows [{self.row}, {stripe_end}), column {min(at, c0)}")
                at = c1
            if self.right is not None and at != self.right:
                self._fail(f"a gap at rows [{self.row}, {stripe_end}) or above, column "
                           f"{min(at, self.right)}")
            self.right = at
            self.row = stripe_end
            self.active = [a for a in self.active if a[0] > self.row]

    def _fail(self, why: str) -> None:
        raise DeepSegError(f"prediction shard {self.shard}: its blocks do not cover its rows "
                           f"({why}); delete that shard's .blocks and .commit.json files and "
                           "rerun its 'deepseg predict --shard'")

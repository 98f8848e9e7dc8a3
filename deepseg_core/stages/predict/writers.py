"""Writing semantic tile results into a shard's partial: tile cores, or blended probabilities."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...contracts.raster import Window
from ...errors import DeepSegError
from ...geo.grid import Stripe
from ...geo.tiling import relative

if TYPE_CHECKING:
    from ...inference.pipeline import TileJob
    from .partials import Partial

BLOCK_WIDTH = 1024  # blended rows are written in blocks of this width


@dataclass(frozen=True)
class Encoding:
    """How a shard's results are stored: class dtype and nodata, probabilities, commits."""

    class_dtype: str
    nodata: int
    nclasses: int
    probabilities: str  # 'none', 'uint8' or 'float32'
    commit_seconds: float = 5.0  # at most this much work is lost to a kill

    def probs(self, probs: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(rows, cols, classes) float -> (classes, rows, cols) in the output encoding."""
        probs = np.moveaxis(probs, -1, 0)
        if self.probabilities == "uint8":
            out = np.round(np.clip(probs, 0, 1) * 255).astype(np.uint8)
        else:
            out = probs.astype(np.float32)
        out[:, ~valid] = self.fill
        return out

    @property
    def fill(self) -> float:
        """The probabilities' nodata value."""
        return 0 if self.probabilities == "uint8" else np.nan

    def write(self, partial: Partial, probs: np.ndarray | None, valid: np.ndarray,
              window: Window) -> None:
        """Classes (and probabilities) of ``window``; ``probs`` None: all nodata."""
        if probs is None:
            classes = np.full(valid.shape, self.nodata, self.class_dtype)
        else:
            classes = np.argmax(probs, axis=-1).astype(self.class_dtype)
            classes[~valid] = self.nodata
        partial.write("classes", classes[None], window)
        if self.probabilities != "none":
            if probs is None:
                probs = np.zeros((*valid.shape, self.nclasses), np.float32)
            partial.write("probabilities", self.probs(probs, valid), window)


class CoreWriter:
    """Each tile writes only its core: no seams, no double writes. An all-nodata tile writes
    a nodata core, so the blocks of a finished partial cover every pixel of its rows."""

    def __init__(self, partial: Partial, cores: Sequence[Window], encoding: Encoding) -> None:
        self.partial, self.cores, self.encoding = partial, cores, encoding
        self.last = time.monotonic()

    def __call__(self, job: TileJob) -> None:
        core = self.cores[job.index]
        rows, cols = relative(core, job.window)
        probs = probabilities(job)
        probs = None if probs is None else probs[rows, cols]
        valid = job.valid[rows, cols] & (probs is not None)
        self.encoding.write(self.partial, probs, valid, core)
        self.maybe_commit(job.index + 1)

    def maybe_commit(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.encoding.commit_seconds:
            self.partial.commit(done)
            self.last = now

    def finish(self, done: int) -> None:
        """All ``done`` tiles are written: the partial is complete."""
        self.partial.commit(done, complete=True)


def probabilities(job: TileJob) -> np.ndarray | None:
    """A tile's class probabilities; None for an all-nodata tile."""
    if job.result is None:
        return None
    if job.result.probabilities is None:
        raise DeepSegError("the model gave a tile result without class probabilities; is it "
                           "an instance model of a semantic experiment?")
    return job.result.probabilities


def blend_weights(size: int) -> np.ndarray:
    """A tapered (size, size) weight: highest in the centre, small but positive at the edges."""
    ramp = np.minimum(np.arange(size) + 1, np.arange(size)[::-1] + 1).astype(np.float32)
    ramp /= ramp.max()
    return np.outer(ramp, ramp) + 1e-3


class BlendWriter(CoreWriter):
    """Weighted blending of overlapping probabilities, one vertical stripe at a time; holds
    only the current stripe's tile rows in flight, so memory grows with the stripe's width
    (``predict.stripe_width``), never the raster's.

    The shard's tiles come stripe by stripe (``stripes``; a tile across a stripe edge once per
    stripe), each stripe row-major. Blending adds a pixel's shares in tile order whatever the
    stripes, so their width changes no result (for the same tile probabilities). Rows above
    the current tile row of a stripe are final and written; a commit is made there (with the
    row floor: the stripe's rows above it are written), and a resumed run recomputes every
    tile row of that stripe that reaches below the floor (``restart``) without writing final
    rows again. A stripe's end writes its last rows and commits at the next stripe's first
    tile, the floor back at the shard's first row.
    """

    def __init__(self, partial: Partial, cores: Sequence[Window], encoding: Encoding,
                 windows: Sequence[Window], width: int, rows: tuple[int, int],
                 stripes: Sequence[Stripe] | None = None) -> None:
        """``rows``: (first, end) raster rows this shard owns; ``stripes``: default one over
        the whole ``width``."""
        super().__init__(partial, cores, encoding)
        self.windows, self.rows = windows, rows
        self.stripes = list(stripes) if stripes is not None else \
            [Stripe(0, len(windows), 0, width)]
        self.weights = blend_weights(windows[0].height if windows else 1)
        self.row_start = partial.done  # index of the first tile of the current tile row
        at = next((k for k, st in enumerate(self.stripes) if st.end > self.row_start), 0)
        self._open(at, max(int(partial.get("row_floor", 0)), rows[0]))

    def _open(self, stripe: int, floor: int) -> None:
        """Empty buffers for stripe ``stripe``, whose rows above ``floor`` are written."""
        self.stripe, self.floor = stripe, floor
        self.top: int | None = None  # the raster row of the buffers' first row
        st = self.stripes[stripe] if self.stripes else Stripe(0, 0, 0, 0)
        shape = (2 * self.weights.shape[0], st.x1 - st.x0)
        self.acc = np.zeros((self.encoding.nclasses, *shape), np.float32)
        self.wsum = np.zeros(shape, np.float32)
        self.valid = np.zeros(shape, bool)

    def __call__(self, job: TileJob) -> None:
        w = job.window
        if job.index >= self.stripes[self.stripe].end:  # the next stripe's first tile
            self._close()
            self._open(next(k for k, st in enumerate(self.stripes) if st.end > job.index),
                       self.rows[0])
            self.row_start = job.index
            self.partial.commit(job.index, row_floor=self.floor)
        if self.top is None:
            self.top = w.row_off
        if w.row_off != self.windows[self.row_start].row_off:
            self.top = self._finalize(self.top, w.row_off - self.top)
            self.row_start = job.index
            self.partial.commit(self.restart(), row_floor=self.floor)
        result = probabilities(job)
        if result is None:
            return
        x0, x1 = self.stripes[self.stripe].x0, self.stripes[self.stripe].x1
        r = w.row_off - self.top
        c0, c1 = max(w.col_off, x0), min(w.col_off + w.width, x1)
        tr = slice(0, min(w.height, self.acc.shape[1] - r))
        tc = slice(c0 - w.col_off, c1 - w.col_off)
        weight = self.weights[tr, tc] * job.valid[tr, tc]
        probs = np.moveaxis(result[tr, tc], -1, 0)
        rows, cols = slice(r, r + tr.stop), slice(c0 - x0, c1 - x0)
        self.acc[:, rows, cols] += probs * weight
        self.wsum[rows, cols] += weight
        self.valid[rows, cols] |= job.valid[tr, tc]

    def restart(self) -> int:
        """Where a resumed run starts: the first tile of the stripe's first tile row that
        still adds to unwritten rows (from the floor on). Usually the previous tile row; where
        the last tile row is shifted up to fit the raster, three tile rows overlap and it is
        the one before."""
        i, first = self.row_start, self.stripes[self.stripe].first
        while i > first and self.windows[i - 1].row_off + self.windows[i - 1].height > self.floor:
            i -= 1
        return i

    def _finalize(self, top: int, n: int) -> int:
        """Write the ``n`` rows from ``top`` (the buffers' first row), shift the buffers up;
        the new top."""
        start = max(self.floor - top, 0)
        end = min(n, self.rows[1] - top)  # rows past the shard: the next one's
        if end > start:
            x0 = self.stripes[self.stripe].x0
            probs = self.acc[:, start:end] / np.maximum(self.wsum[start:end], 1e-12)
            probs = np.moveaxis(probs, 0, -1)
            for c0 in range(0, self.acc.shape[2], BLOCK_WIDTH):
                c1 = min(c0 + BLOCK_WIDTH, self.acc.shape[2])
                window = Window(top + start, x0 + c0, end - start, c1 - c0)
                self.encoding.write(self.partial, probs[:, c0:c1],
                                    self.valid[start:end, c0:c1], window)
            self.floor = top + end
        for buf in (self.acc, self.wsum, self.valid):
            buf[..., :buf.shape[-2] - n, :] = buf[..., n:, :]
            buf[..., buf.shape[-2] - n:, :] = 0
        return top + n

    def _close(self) -> None:
        """Write the current stripe's last rows."""
        if self.top is not None:
            self.top = self._finalize(self.top, min(self.rows[1] - self.top, self.acc.shape[1]))

    def maybe_commit(self, done: int) -> None:
        """Commits happen only at tile-row and stripe boundaries (see __call__)."""

    def finish(self, done: int) -> None:
        self._close()
        self.partial.commit(done, complete=True, row_floor=self.floor)

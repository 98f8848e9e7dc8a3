"""Writing semantic tile results into a shard's partial: tile cores, or blended probabilities."""

from __future__ import annotations

import time

import numpy as np

from ..geo.tiling import relative
from ..raster import Window

CHECKPOINT_SECONDS = 5.0


def _encode_probs(probs: np.ndarray, kind: str) -> np.ndarray:
    """(rows, cols, classes) float -> (classes, rows, cols) in the output encoding."""
    probs = np.moveaxis(probs, -1, 0)
    if kind == "uint8":
        return np.round(np.clip(probs, 0, 1) * 255).astype(np.uint8)
    return probs.astype(np.float32)


class CoreWriter:
    """Each tile writes only its core: no seams, no double writes."""

    def __init__(self, partial, cores: dict[int, Window], nodata: int, probabilities: str):
        self.partial, self.cores, self.nodata = partial, cores, nodata
        self.probabilities = probabilities
        self.last = time.monotonic()

    def __call__(self, job) -> None:
        if job.result is not None:
            core = self.cores[job.index]
            rows, cols = relative(core, job.window)
            probs = job.result.probabilities[rows, cols]
            valid = job.valid[rows, cols]
            classes = np.argmax(probs, axis=-1).astype(self.partial.file["classes"].dtype)
            classes[~valid] = self.nodata
            self.partial.write("classes", classes[None], core)
            if self.probabilities != "none":
                encoded = _encode_probs(probs, self.probabilities)
                encoded[:, ~valid] = 0 if self.probabilities == "uint8" else np.nan
                self.partial.write("probabilities", encoded, core)
        self.maybe_checkpoint(job.index + 1)

    def maybe_checkpoint(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= CHECKPOINT_SECONDS:
            self.partial.checkpoint(done)
            self.last = now

    def finish(self, done: int) -> None:
        self.partial.checkpoint(done, complete=True)


def blend_weights(size: int) -> np.ndarray:
    """A tapered (size, size) weight: highest in the centre, small but positive at the edges."""
    ramp = np.minimum(np.arange(size) + 1, np.arange(size)[::-1] + 1).astype(np.float32)
    ramp /= ramp.max()
    return np.outer(ramp, ramp) + 1e-3


class BlendWriter(CoreWriter):
    """Weighted blending of overlapping probabilities; holds only the tile rows in flight.

    Rows above the current tile row are final and written; a checkpoint is taken there, and a
    resumed run recomputes the previous tile row without rewriting final rows.
    """

    def __init__(self, partial, cores, nodata, probabilities, windows, nclasses, width,
                 row_floor: int):
        super().__init__(partial, cores, nodata, probabilities)
        self.windows, self.nclasses, self.width = windows, nclasses, width
        size = windows[0].height
        self.weights = blend_weights(size)
        self.top = None
        self.acc = np.zeros((nclasses, 2 * size, width), np.float32)
        self.wsum = np.zeros((2 * size, width), np.float32)
        self.valid = np.zeros((2 * size, width), bool)
        self.floor = max(row_floor, partial.row0)  # rows below: final, or another shard's
        self.row_start = 0  # index of the first tile of the current tile row

    def __call__(self, job) -> None:
        w = job.window
        if self.top is None:
            self.top = w.row_off
        if w.row_off != self.windows[self.row_start].row_off:
            self._finalize(w.row_off)
            previous_row_start, self.row_start = self.row_start, job.index
            self.partial.file.attrs["row_floor"] = self.floor
            self.partial.checkpoint(previous_row_start)
        if job.result is None:
            return
        r = w.row_off - self.top
        c0, c1 = max(w.col_off, 0), min(w.col_off + w.width, self.width)
        tr = slice(0, min(w.height, self.acc.shape[1] - r))
        tc = slice(c0 - w.col_off, c1 - w.col_off)
        weight = self.weights[tr, tc] * job.valid[tr, tc]
        probs = np.moveaxis(job.result.probabilities[tr, tc], -1, 0)
        rows = slice(r, r + tr.stop)
        self.acc[:, rows, c0:c1] += probs * weight
        self.wsum[rows, c0:c1] += weight
        self.valid[rows, c0:c1] |= job.valid[tr, tc]

    def _finalize(self, upto: int, height: int | None = None) -> None:
        """Write rows [top, upto) and shift the buffers up."""
        n = upto - self.top if height is None else height
        start = max(self.floor - self.top, 0)
        end = min(n, self.partial.row1 - self.top)  # rows past the shard: the next one's
        if end > start:
            probs = self.acc[:, start:end] / np.maximum(self.wsum[start:end], 1e-12)
            valid = self.valid[start:end]
            classes = np.argmax(probs, axis=0).astype(self.partial.file["classes"].dtype)
            classes[~valid] = self.nodata
            window = Window(self.top + start, 0, end - start, self.width)
            self.partial.write("classes", classes[None], window)
            if self.probabilities != "none":
                encoded = _encode_probs(np.moveaxis(probs, 0, -1), self.probabilities)
                encoded[:, ~valid] = 0 if self.probabilities == "uint8" else np.nan
                self.partial.write("probabilities", encoded, window)
            self.floor = self.top + end
        for buf in (self.acc, self.wsum, self.valid):
            buf[..., :buf.shape[-2] - n, :] = buf[..., n:, :]
            buf[..., buf.shape[-2] - n:, :] = 0
        self.top += n

    def maybe_checkpoint(self, done: int, force: bool = False) -> None:
        """Checkpoints happen only at tile-row boundaries (see __call__)."""

    def finish(self, done: int) -> None:
        if self.top is not None:
            self._finalize(None, height=min(self.partial.row1 - self.top, self.acc.shape[1]))
        super().finish(done)

"""Blended prediction resumed at every commit equals an uninterrupted run, including where the
last tile row is shifted up to fit the raster and three tile rows overlap."""

from types import SimpleNamespace

import numpy as np
import pytest

from deepseg_core.builtin.tiler import grid_tiles
from deepseg_core.stages.predict.writers import BlendWriter, Encoding

NCLASSES = 3


class Canvas:
    """A partial that keeps written probabilities in memory and records its commits."""

    def __init__(self, size, done=0, floor=0):
        self.probs = np.full((NCLASSES, size, size), -1.0, np.float32)
        self.done, self.values, self.commits = done, {"row_floor": floor}, []

    def get(self, name, default=None):
        return self.values.get(name, default)

    def write(self, layer, array, window):
        if layer == "probabilities":
            rows = slice(window.row_off, window.row_off + window.height)
            cols = slice(window.col_off, window.col_off + window.width)
            self.probs[:, rows, cols] = array

    def commit(self, tiles, complete=False, **values):
        self.commits.append((tiles, values.get("row_floor")))


def jobs(windows, start):
    for i in range(start, len(windows)):
        w = windows[i]
        probs = np.random.default_rng(i).random((w.height, w.width, NCLASSES), np.float32)
        yield SimpleNamespace(index=i, window=w, valid=np.ones((w.height, w.width), bool),
                              result=SimpleNamespace(probabilities=probs))


def run(windows, size, partial, start):
    encoding = Encoding("uint8", 255, NCLASSES, "float32")
    writer = BlendWriter(partial, {}, encoding, windows, size, (0, size))
    for job in jobs(windows, start):
        writer(job)
    writer.finish(len(windows))
    return partial


@pytest.mark.parametrize(("size", "tile", "overlap"), [(300, 32, 8), (96, 32, 8), (130, 32, 16)])
def test_a_run_resumed_at_any_commit_equals_an_uninterrupted_one(size, tile, overlap):
    windows = grid_tiles(size, size, tile, overlap)
    full = run(windows, size, Canvas(size), 0)
    assert (full.probs >= 0).all()
    for done, floor in full.commits[:-1]:
        resumed = run(windows, size, Canvas(size, done, floor), done)
        written = resumed.probs[:, floor:]
        assert (resumed.probs[:, :floor] == -1).all()  # rows above the floor: not rewritten
        np.testing.assert_array_equal(written, full.probs[:, floor:],
                                      err_msg=f"resumed at tile {done}, floor {floor}")

"""Blending in vertical stripes: memory grows with the stripe, and the stripe width changes no
pixel: whatever the width, sharded or not, resumed at any commit or not, every pixel is
written once, with the value of one uninterrupted run over a single stripe."""

from types import SimpleNamespace

import numpy as np
import pytest

from deepseg_core.builtin.tiler import grid_tiles
from deepseg_core.contracts.raster import Window
from deepseg_core.errors import DeepSegError
from deepseg_core.geo.tiling import tile_cores
from deepseg_core.stages.predict.cover import Cover
from deepseg_core.stages.predict.plan import Plan
from deepseg_core.stages.predict.writers import BlendWriter, Encoding

NCLASSES = 3
CASES = [(300, 140, 32, 8), (130, 97, 32, 16), (100, 64, 16, 5)]  # width, height, tile, overlap
WIDTHS = [16, 33, 64, 100, 10**6]  # 10**6: one stripe


class Log:
    """A partial that keeps its writes and commits in memory."""

    def __init__(self, done=0, floor=None):
        self.done, self.values, self.events = done, {}, []
        if floor is not None:
            self.values["row_floor"] = floor

    def get(self, name, default=None):
        return self.values.get(name, default)

    def write(self, layer, array, window):
        self.events.append(("write", layer, window, array.copy()))

    def commit(self, tiles, complete=False, **values):
        self.events.append(("commit", tiles, values.get("row_floor"), complete))


def nodata(height, width):
    """Where the raster is nodata: a block of whole tiles and a few scattered pixels."""
    mask = np.zeros((height, width), bool)
    mask[:40, :70] = True
    mask[::7, ::11] = True
    return mask


def jobs(windows, start, mask):
    """Each tile's probabilities depend only on its window: a tile predicted twice (in two
    stripes) gets the same ones, as from a model that does not depend on its batch."""
    height, width = mask.shape
    for i in range(start, len(windows)):
        w = windows[i]
        valid = np.zeros((w.height, w.width), bool)
        inside = w.clip(height, width)
        valid[:inside.height, :inside.width] = ~mask[inside.slices]
        probs = np.random.default_rng([w.row_off, w.col_off]).random(
            (w.height, w.width, NCLASSES), np.float32)
        result = SimpleNamespace(probabilities=probs) if valid.any() else None
        yield SimpleNamespace(index=i, window=w, valid=valid, result=result)


def shard(case, stripe_width, i=0, n=1):
    """``Plan.shard`` of the grid of ``case``, blending in stripes of ``stripe_width`` px."""
    width, height, tile, overlap = case
    grid = grid_tiles(width, height, tile, overlap)
    plan = SimpleNamespace(settings=SimpleNamespace(blend=True, stripe_width=stripe_width,
                                                    tilesize=tile),
                           windows=grid, cores=tile_cores(grid, width, height),
                           info=SimpleNamespace(width=width))
    return Plan.shard(plan, i, n)


def run(case, part, partial, start=0):
    width, height = case[:2]
    writer = BlendWriter(partial, part.cores, Encoding("uint8", 255, NCLASSES, "float32"),
                         part.windows, width, part.rows, part.stripes)
    for job in jobs(part.windows, start, nodata(height, width)):
        writer(job)
    writer.finish(len(part.windows))
    return writer


def paint(case, events, canvas=None, count=None):
    """The probabilities written by ``events`` and how often each pixel was written."""
    width, height = case[:2]
    canvas = np.full((NCLASSES, height, width), -1.0, np.float32) if canvas is None else canvas
    count = np.zeros((height, width), int) if count is None else count
    for _, layer, window, array in (e for e in events if e[0] == "write"):
        if layer == "probabilities":
            canvas[(slice(None), *window.slices)] = array
            count[window.slices] += 1
    return canvas, count


def reference(case):
    part = shard(case, 10**6)
    assert len(part.stripes) == 1
    return paint(case, run(case, part, Log()).partial.events)[0]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("shards", [1, 3])
def test_any_stripe_width_and_sharding_give_one_stripe_s_result(case, shards):
    expected = reference(case)
    assert not np.isnan(expected[:, ~nodata(*case[1::-1])]).any()
    for stripe_width in WIDTHS:
        canvas, count = None, None
        for i in range(shards):
            part = shard(case, stripe_width, i, shards)
            writer = run(case, part, Log())
            assert writer.acc.shape[-1] <= stripe_width  # the buffers: one stripe wide
            canvas, count = paint(case, writer.partial.events, canvas, count)
        assert (count == 1).all(), stripe_width
        np.testing.assert_array_equal(canvas, expected, err_msg=f"stripes of {stripe_width} px")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stripe_width", [33, 64])
def test_a_striped_run_resumed_at_any_commit_equals_an_uninterrupted_one(case, stripe_width):
    part = shard(case, stripe_width)
    assert len(part.stripes) > 1
    events = run(case, part, Log()).partial.events
    expected = reference(case)
    commits = [k for k, e in enumerate(events) if e[0] == "commit" and not e[3]]
    assert len(commits) > len(part.stripes)
    for k in commits:
        _, done, floor, _ = events[k]
        durable = paint(case, events[:k])  # what the killed run committed
        resumed = run(case, part, Log(done, floor), start=done).partial.events
        canvas, count = paint(case, resumed, *durable)
        assert (count == 1).all(), f"resumed at tile {done}, floor {floor}"
        np.testing.assert_array_equal(canvas, expected,
                                      err_msg=f"resumed at tile {done}, floor {floor}")


def test_the_cover_check_follows_the_stripes():
    case = (130, 97, 32, 16)
    part = shard(case, 33, 1, 3)
    windows = [e[2] for e in run(case, part, Log()).partial.events
               if e[0] == "write" and e[1] == "classes"]
    assert any(b.row_off < a.row_off for a, b in zip(windows, windows[1:]))  # back up: a pass

    def check(blocks):
        cover = Cover(*part.rows, case[0], "1/3")
        for window in blocks:
            cover.add(window)
        cover.finish()

    check(windows)
    later = next(k for k, w in enumerate(windows) if w.col_off >= 33)  # the second stripe's
    for broken, word in [(windows[:later] + windows[later + 1:], "gap|no block covers"),
                         (windows[:later + 1] + windows[later:], "outside|overlap"),
                         (windows + windows[:2], "outside"),
                         (windows[:-1], "gap|no block covers")]:
        with pytest.raises(DeepSegError, match=word):
            check(broken)
    w = windows[later]
    moved = Window(w.row_off, w.col_off + 1, w.height, w.width - 1)
    with pytest.raises(DeepSegError, match="gap"):
        check(windows[:later] + [moved] + windows[later + 1:])

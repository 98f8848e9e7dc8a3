"""Tile lists computed, not stored (geo.grid): the grid tiler's sequence, its cores, a shard's
views and a resumed run's slice equal the lists they replace; at 10^6 px on a side they stay a
few thousand origins."""

import itertools

import pytest

from deepseg_core.builtin.tiler import grid_origins, grid_tiles
from deepseg_core.contracts.raster import Window
from deepseg_core.geo.grid import Chain, Take, TileGrid, row_origins, select, striped
from deepseg_core.geo.tiling import tile_cores

SIZES = [(100, 80, 32, 8), (1000, 700, 256, 64), (10, 10, 32, 8), (20, 1, 8, 3),
         (300, 300, 32, 8), (97, 130, 16, 5)]


def as_list(width, height, tilesize, overlap):
    """The grid rule as the list the tiler returned before."""
    cols = grid_origins(width, tilesize, overlap)
    return [Window(r, c, tilesize, tilesize)
            for r in grid_origins(height, tilesize, overlap) for c in cols]


@pytest.mark.parametrize("size", SIZES)
def test_the_grid_is_the_list_it_replaces(size):
    grid, listed = grid_tiles(*size), as_list(*size)
    assert isinstance(grid, TileGrid) and grid == listed and listed == grid
    assert len(grid) == len(listed) and list(grid) == listed
    assert [grid[k] for k in range(-len(grid), len(grid))] == listed + listed
    for k in (len(grid), -len(grid) - 1):
        with pytest.raises(IndexError):
            grid[k]
    for start, stop, step in itertools.product([None, 0, 3, -2, 50], [None, 5, -1, 1000],
                                               [None, 1, 2, -1, -3]):
        view = grid[start:stop:step]
        assert list(view) == listed[start:stop:step] and view == listed[start:stop:step]
        assert list(view[1:]) == listed[start:stop:step][1:]
    assert grid != listed[:-1] and grid != "abc" and grid != [*listed[:-1], Window(0, 0, 1, 1)]


@pytest.mark.parametrize("size", SIZES)
def test_cores_of_the_grid_equal_the_cores_of_the_list(size):
    width, height = size[:2]
    cores = tile_cores(grid_tiles(*size), width, height)
    assert isinstance(cores, TileGrid)
    assert cores == tile_cores(as_list(*size), width, height)


@pytest.mark.parametrize("size", SIZES)
def test_selections_are_the_same_for_the_grid_and_the_list(size):
    width = size[0]
    grid, listed = grid_tiles(*size), as_list(*size)
    starts = row_origins(grid)
    assert starts == row_origins(listed)
    for lo, hi in [(0, len(starts)), (0, 1), (len(starts) - 1, len(starts)), (1, 3)]:
        rows = starts[lo:hi]
        assert list(select(grid, rows)) == select(listed, rows)
        for cols in [(0, width), (0, 1), (width - 1, width), (17, 60), (40, 41)]:
            assert list(select(grid, rows, cols)) == select(listed, rows, cols)
        for stripe_width in (16, 50, 64, width, 10 * width):
            tiles, stripes = striped(grid, rows, width, stripe_width)
            same, same_stripes = striped(listed, rows, width, stripe_width)
            assert list(tiles) == list(same) and stripes == same_stripes
            assert stripes[0].first == 0 and stripes[-1].end == len(tiles)
            assert [s.x0 for s in stripes] == list(range(0, width, stripe_width))
            for s in stripes:
                inside = [grid[p] for p in tiles[s.first:s.end]]
                assert inside == [w for w in listed if w.row_off in rows and
                                  w.col_off < s.x1 and w.col_off + w.width > s.x0]


def test_views_compose():
    base = list(range(100))
    chain = Chain([range(0, 10), [], range(50, 55), [7, 3]])
    assert list(chain) == [*range(10), *range(50, 55), 7, 3] and len(chain) == 17
    assert [chain[k] for k in range(17)] == list(chain) and chain[-1] == 3
    take = Take(base, chain)
    assert take == list(chain) and take[3:] == list(chain)[3:] and take[::-2] == list(chain)[::-2]
    assert Chain([]) == [] and len(Take(base, [])) == 0


def test_a_raster_of_a_million_px_on_a_side_is_a_few_thousand_origins():
    width = height = 1_000_000
    grid = grid_tiles(width, height, 256, 32)
    n = len(grid_origins(width, 256, 32))
    assert n == 4465 and len(grid.rows) == len(grid.cols) == n and len(grid) == n * n
    assert grid[-1] == Window(height - 256, width - 256, 256, 256)
    cut = ((n - 2) * 224 + 256 + width - 256) // 2  # between the last two tiles' origins
    assert tile_cores(grid, width, height)[-1] == Window(cut, cut, width - cut, width - cut)
    starts = row_origins(grid)
    tiles, stripes = striped(grid, starts[100:300], width, 8192)
    assert len(stripes) == 123 and len(tiles) == stripes[-1].end
    assert all((s.end - s.first) % 200 == 0 for s in stripes)  # whole tile rows
    assert 200 * n < len(tiles) < 1.1 * 200 * n  # tiles across stripe edges: twice
    shard = Take(grid, tiles)
    assert shard[0] == Window(100 * 224, 0, 256, 256)
    assert shard[len(tiles) - 1] == Window(299 * 224, width - 256, 256, 256)
    resumed = shard[len(tiles) - 5:]
    assert len(resumed) == 5 and resumed[4] == shard[-1]

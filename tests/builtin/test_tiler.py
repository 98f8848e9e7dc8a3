"""The built-in grid tiler: tile origins, coverage, cores that partition the raster."""


import numpy as np
import pytest

from deepseg_core.builtin.tiler import grid_tiles
from deepseg_core.contracts.raster import Window
from deepseg_core.errors import DeepSegError
from deepseg_core.geo.tiling import tile_cores


def grid_cores(width, height, tilesize, overlap):
    return tile_cores(grid_tiles(width, height, tilesize, overlap), width, height)


def expected_origins(size, tilesize, overlap):
    """The grid rule written out: step by the stride, then snap the last tile to the edge."""
    origins, origin = [], 0
    while origin + tilesize < size:
        origins.append(origin)
        origin += tilesize - overlap
    origins.append(max(size - tilesize, 0))
    return origins


COMBOS = [(w, h, t, o) for w, h in [(1, 1), (5, 37), (16, 16), (64, 48), (100, 33), (97, 130)]
          for t in (2, 5, 7, 16, 32) for o in range(0, t, max(1, t // 5))] + [(7, 5, 1, 0)]


@pytest.mark.parametrize("width, height, tilesize, overlap", [
    (100, 80, 32, 8), (64, 64, 32, 0), (64, 64, 16, 4), (10, 10, 32, 8), (33, 5, 16, 3),
    (1000, 700, 256, 64), (257, 256, 256, 0), (256, 257, 256, 255)])
def test_windows_follow_the_grid_rule(width, height, tilesize, overlap):
    tiles = grid_tiles(width, height, tilesize, overlap)
    rows = expected_origins(height, tilesize, overlap)
    cols = expected_origins(width, tilesize, overlap)
    assert tiles == [Window(r, c, tilesize, tilesize) for r in rows for c in cols]
    assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
    count = np.zeros((height, width), int)
    for tile in tiles:
        count[tile.clip(height, width).slices] += 1
    assert count.min() >= 1
    if width >= tilesize:
        assert max(t.col_off + t.width for t in tiles) == width
    if height >= tilesize:
        assert max(t.row_off + t.height for t in tiles) == height


def test_exact_multiples_and_small_rasters():
    assert [t.col_off for t in grid_tiles(96, 32, 32, 0)] == [0, 32, 64]
    assert [t.col_off for t in grid_tiles(100, 32, 32, 0)] == [0, 32, 64, 68]
    assert [t.col_off for t in grid_tiles(88, 32, 32, 4)] == [0, 28, 56]
    assert grid_tiles(10, 20, 32, 8) == [Window(0, 0, 32, 32)]  # reaches past the edge
    assert grid_tiles(32, 32, 32, 8) == [Window(0, 0, 32, 32)]
    assert grid_tiles(np.int64(40), 32, np.int32(32), 0)[-1] == Window(0, 8, 32, 32)


def test_cores_partition_the_raster():
    for width, height, tilesize, overlap in COMBOS:
        tiles = grid_tiles(width, height, tilesize, overlap)
        cores = grid_cores(width, height, tilesize, overlap)
        assert len(cores) == len(tiles)
        count = np.zeros((height, width), int)
        for tile, core in zip(tiles, cores):
            assert core.height > 0 and core.width > 0
            assert core.clip(height, width) == core  # inside the raster
            assert core.row_off >= tile.row_off and core.col_off >= tile.col_off  # in its tile
            assert core == core.clip(tile.row_off + tile.height, tile.col_off + tile.width)
            count[core.slices] += 1
        assert (count == 1).all(), (width, height, tilesize, overlap)


def test_core_drops_half_the_overlap():
    tiles = grid_tiles(1000, 1000, 256, 64)
    cores = grid_cores(1000, 1000, 256, 64)
    assert cores[0] == Window(0, 0, 224, 224)  # edge tile: extended to the raster edge
    assert cores[1] == Window(0, 224, 224, 192)  # interior: 32 px off each side
    assert tiles[1] == Window(0, 192, 256, 256)
    # the snapped last column (origin 744) overlaps its neighbour (origin 576) by 88 px
    assert tiles[4] == Window(0, 744, 256, 256)
    assert cores[4] == Window(0, 788, 224, 212)
    assert cores[3].col_off + cores[3].width == 788
    odd = grid_cores(20, 1, 8, 3)  # origins 0, 5, 10, 12: cuts at 6, 11, 15
    assert [(c.col_off, c.width) for c in odd] == [(0, 6), (6, 5), (11, 4), (15, 5)]


@pytest.mark.parametrize("args, word", [
    ((100, 100, 32, 32), "overlap"), ((100, 100, 32, 40), "overlap"),
    ((100, 100, 32, -1), "overlap"), ((100, 100, 0, 0), "tilesize"),
    ((100, 100, -8, 0), "tilesize"), ((100, 100, 32.5, 0), "tilesize"),
    ((100, 100, True, 0), "tilesize"), ((0, 100, 32, 0), "empty"), ((100, "7", 32, 0), "height")])
def test_invalid_parameters(args, word):
    with pytest.raises(DeepSegError, match=word):
        grid_tiles(*args)
    with pytest.raises(DeepSegError, match=word):
        grid_cores(*args)

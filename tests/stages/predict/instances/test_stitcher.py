"""Instance stitching: ownership, non-transitive duplicate merging, outputs, shard merging."""

import numpy as np
import pyogrio
import pytest
import shapely
from affine import Affine

from deepseg_core.contracts.model import Instance
from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.errors import DeepSegError
from deepseg_core.stages.predict.instances.duplicates import DuplicateMerger
from deepseg_core.stages.predict.instances.merge import merge_shards
from deepseg_core.stages.predict.instances.options import StitchOptions
from deepseg_core.stages.predict.instances.stitcher import InstanceStitcher, instances_to_map, owned

TRANSFORM = Affine(0.5, 0, 1000, 0, -0.5, 2000)
H, W, TILE, OVERLAP = 90, 110, 32, 12


def origins(size, tilesize=TILE, overlap=OVERLAP):
    if size <= tilesize:
        return [0]
    return list(range(0, size - tilesize, tilesize - overlap)) + [size - tilesize]


def axis_cores(size):
    """Cuts halfway through each overlap; the first and last cores reach the raster edge."""
    starts = origins(size)
    cuts = [0] + [(b + a + TILE) // 2 for a, b in zip(starts, starts[1:])] + [size]
    return list(zip(starts, cuts, cuts[1:]))


def grid():
    """(tile, core) windows in row-major order."""
    return [(Window(r, c, TILE, TILE), Window(r0, c0, r1 - r0, c1 - c0))
            for r, r0, r1 in axis_cores(H) for c, c0, c1 in axis_cores(W)]


def make_discs(seed=3):
    """Non-overlapping discs (radius 2-5 px) all over, some cut by the raster edge."""
    rng = np.random.default_rng(seed)
    discs = [(1.0, 50.0, 4.0), (88.5, 30.0, 5.0), (45.0, 0.5, 3.0)]  # on raster edges
    while len(discs) < 60:
        r = rng.uniform(2, 5.5)
        cy, cx = rng.uniform(-2, H + 2), rng.uniform(-2, W + 2)
        if all(np.hypot(cy - y, cx - x) > r + q + 2 for y, x, q in discs):
            discs.append((cy, cx, r))
    yy, xx = np.mgrid[:H, :W] + 0.5
    masks = [(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r for cy, cx, r in discs]
    return [m for m in masks if m.any()]


def tile_instances(masks, tile, cropped=False):
    """Every disc with pixels in the tile, clipped to it, as a model would report it: with a
    full-tile mask, or (``cropped``) a mask cut to the box at ``Instance.origin``."""
    out = []
    for k, mask in enumerate(masks):
        crop = np.zeros((TILE, TILE), bool)
        inner = tile.clip(H, W)
        crop[inner.row_off - tile.row_off:inner.row_off - tile.row_off + inner.height,
             inner.col_off - tile.col_off:inner.col_off - tile.col_off + inner.width] = \
            mask[inner.slices]
        if crop.any():
            rows, cols = np.flatnonzero(crop.any(1)), np.flatnonzero(crop.any(0))
            box = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
            score = 0.5 + 0.4 * ((k * 37) % 11) / 11
            if cropped:
                out.append(Instance(1 + k % 2, score, crop[box[0]:box[2], box[1]:box[3]], box,
                                    origin=box[:2]))
            else:
                out.append(Instance(1 + k % 2, score, crop, box))
    return out


def info():
    return RasterInfo(W, H, 1, "uint32", crs="EPSG:32633", transform=TRANSFORM)


def stitch(path, tiles=None, cropped=False, **options):
    raster = np.full((H, W), 99, np.uint32)
    masks = make_discs()

    def write_block(array, window):
        assert array.shape == (1, window.height, window.width) and array.dtype == np.uint32
        raster[window.slices] = array[0]

    stitcher = InstanceStitcher(info(), path, ("bg", "oak", "pine"), write_block,
                                StitchOptions(block_size=24, **options))
    for tile, core in tiles or grid():
        stitcher.add_tile(tile, core, tile_instances(masks, tile, cropped))
    return stitcher.finish(), raster, masks


@pytest.mark.parametrize("tolerance", [0, 2])
def test_each_disc_comes_out_exactly_once(tmp_path, tolerance):
    summary, raster, masks = stitch(tmp_path / "i.gpkg", tolerance=tolerance)
    frame = pyogrio.read_dataframe(tmp_path / "i.gpkg", layer="instances")
    assert summary["instances"] == len(frame) == len(masks)
    # ownership alone settles discs smaller than the overlap; a tolerance leaves duplicates
    # near core boundaries that the merge pass removes
    assert (summary["duplicates"] == 0) == (tolerance == 0)
    cores = [core for _, core in grid()]
    straddling = [m for m in masks if sum(m[c.slices].any() for c in cores) > 1]
    assert len(straddling) >= 10 and summary["detections"] > 2 * len(masks)  # seen many times
    assert frame.crs.to_epsg() == 32633 and frame.geometry.is_valid.all()
    assert set(frame["class_name"]) == {"oak", "pine"}
    for mask in masks:  # every disc, edge ones included, with its exact pixels and one id
        ids = np.unique(raster[mask])
        assert len(ids) == 1 and ids[0] > 0
        row = frame[frame["instance_id"] == ids[0]].iloc[0]
        assert row["area"] == mask.sum() * 0.25
    assert (raster[~np.any(masks, axis=0)] == 0).all()
    assert sorted(np.unique(raster[raster > 0])) == sorted(frame["instance_id"])


def test_box_sized_masks_stitch_like_full_tile_masks(tmp_path):
    full, full_raster, _ = stitch(tmp_path / "full.gpkg")
    cut, cut_raster, _ = stitch(tmp_path / "cut.gpkg", cropped=True)
    assert {**cut, "path": None} == {**full, "path": None}
    assert (cut_raster == full_raster).all()
    a, b = (pyogrio.read_dataframe(tmp_path / f"{n}.gpkg", layer="instances")
            for n in ("full", "cut"))
    assert len(a) == len(b) > 50
    assert shapely.equals(a.geometry.values, b.geometry.values).all()


def test_a_cropped_mask_knows_its_place_in_the_tile():
    mask = np.ones((3, 4), bool)
    mask[0, 0] = False
    inst = Instance(1, 0.9, mask, (5, 6, 8, 10), origin=(5, 6))
    assert inst.extent() == (5, 6, 8, 10) and inst.window() == (slice(5, 8), slice(6, 10))
    full = inst.full_mask((12, 12))
    assert full.sum() == 11 and not full[5, 6] and full[7, 9]
    with pytest.raises(DeepSegError, match=r"instance mask \(3, 4\) at \(5, 6\) does not fit"):
        inst.full_mask((8, 9))


def test_shards_merge_to_the_single_run(tmp_path):
    single, raster, _ = stitch(tmp_path / "all.gpkg")
    tiles, masks = grid(), make_discs()
    rows = sorted({t.row_off for t, _ in tiles})
    paths = []
    for shard in range(2):  # shard i takes every other row of tiles
        stitcher = InstanceStitcher(info(), tmp_path / f"s{shard}.gpkg", shard=True)
        for tile, core in tiles:
            if rows.index(tile.row_off) % 2 == shard:
                stitcher.add_tile(tile, core, tile_instances(masks, tile))
        assert stitcher.finish()["candidates"] > 0
        paths.append(tmp_path / f"s{shard}.gpkg")
    merged = np.zeros((H, W), np.uint32)

    def write_block(array, window):
        merged[window.slices] = array[0]

    summary = merge_shards(paths, info(), tmp_path / "m.gpkg", ("bg", "oak", "pine"),
                           write_block, StitchOptions(block_size=24), chunk=7)
    assert summary["instances"] == single["instances"] and summary["shards"] == 2
    assert (merged == raster).all()
    a = pyogrio.read_dataframe(tmp_path / "all.gpkg")
    b = pyogrio.read_dataframe(tmp_path / "m.gpkg")
    assert (a.drop(columns="geometry") == b.drop(columns="geometry")).all().all()
    assert a.geometry.geom_equals(b.geometry).all()


def test_ownership_rule():
    tile, core = Window(0, 20, 32, 32), Window(0, 26, 26, 20)  # margin 6 px at left and right
    assert owned(tile, core, 90, 110, [[2, 30, 22, 45]]).all()  # centre in the core
    assert not owned(tile, core, 90, 110, [[2, 42, 22, 51]]).any()  # centre right of the core
    assert owned(tile, core, 90, 110, [[2, 42, 22, 51]], tolerance=1).all()
    assert not owned(tile, core, 90, 110, [[2, 20, 9, 30]]).any()  # cut by the tile edge
    box = [[2, 20, 9, 40]]  # the box centre decides, not the mask extent
    assert owned(tile, core, 90, 110, [[2, 21, 9, 30]], box).all()
    assert owned(Window(0, 0, 32, 32), Window(0, 0, 26, 26), 90, 110, [[0, 0, 5, 5]]).all()
    padded = Window(80, 100, 32, 32)  # reaches past the raster: its edge is the raster edge
    assert owned(padded, Window(86, 106, 4, 4), 90, 110, [[85, 105, 90, 110]]).all()
    assert not owned(padded, Window(86, 106, 4, 4), 90, 110, [[80, 105, 90, 110]]).any()


def polygons(*coords):
    return np.array([shapely.box(*c) for c in coords], dtype=object)


def feed_one_tile(path, geoms, scores, **options):
    """Detections inside one tile owning the whole raster (pixels = map units)."""
    raster = RasterInfo(100, 100, 1, "uint8", transform=Affine.identity())
    stitcher = InstanceStitcher(raster, path, options=StitchOptions(**options))
    bounds = shapely.bounds(geoms)
    extents = np.stack([bounds[:, 1], bounds[:, 0], bounds[:, 3], bounds[:, 2]], 1) + 10
    geoms = shapely.transform(geoms, lambda xy: xy + 10)
    window = Window(0, 0, 100, 100)
    stitcher.add_polygons(window, window, geoms, [1] * len(geoms), scores, extents)
    stitcher.finish()
    return sorted(pyogrio.read_dataframe(path)["score"], reverse=True)


def test_suppression_is_not_transitive(tmp_path):
    # A and C both lie inside B (intersection over smaller = 1) but do not overlap each other
    chain = polygons((0, 0, 9, 10), (0, 0, 20, 10), (11, 0, 20, 10))
    assert feed_one_tile(tmp_path / "a.gpkg", chain, [0.9, 0.8, 0.7]) == [0.9, 0.7]
    assert feed_one_tile(tmp_path / "b.gpkg", chain, [0.8, 0.9, 0.7]) == [0.9]
    shifted = polygons((0, 0, 10, 10), (2, 0, 12, 10), (4, 0, 14, 10))  # IoU .67, .67, .43
    assert feed_one_tile(tmp_path / "c.gpkg", shifted, [0.9, 0.8, 0.7]) == [0.9, 0.7]


def test_iou_and_containment_thresholds(tmp_path):
    nested = polygons((0, 0, 10, 10), (0, 0, 4, 4))  # IoU .16, intersection/smaller 1
    assert feed_one_tile(tmp_path / "a.gpkg", nested, [0.9, 0.8]) == [0.9]
    assert feed_one_tile(tmp_path / "b.gpkg", nested, [0.9, 0.8], ios=1.0) == [0.9, 0.8]
    side = polygons((0, 0, 10, 10), (2.5, 0, 12.5, 10))  # IoU .6, intersection/smaller .75
    assert feed_one_tile(tmp_path / "c.gpkg", side, [0.7, 0.9]) == [0.9]
    assert feed_one_tile(tmp_path / "d.gpkg", side, [0.7, 0.9], iou=0.65) == [0.9, 0.7]
    assert feed_one_tile(tmp_path / "e.gpkg", side, [0.7, 0.9], iou=0.65, ios=0.7) == [0.9]


def greedy(geoms, scores, iou, ios):
    """Reference: one global greedy pass."""
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        g = geoms[i]
        if not any(_dup(g, geoms[k], iou, ios) for k in kept):
            kept.append(i)
    return sorted(kept)


def _dup(a, b, iou, ios):
    inter = a.intersection(b).area
    return inter / (a.area + b.area - inter) > iou or inter / min(a.area, b.area) > ios


def test_streamed_merging_equals_one_global_greedy_pass():
    rng = np.random.default_rng(7)
    n = 400
    centre = rng.uniform(0, 200, (n, 2))
    geoms = shapely.buffer(shapely.points(centre), rng.uniform(2, 9, n), quad_segs=4)
    scores = rng.permutation(n) / n
    bounds = shapely.bounds(geoms)
    extent = np.stack([np.floor(bounds[:, 1]), np.floor(bounds[:, 0]),
                       np.ceil(bounds[:, 3]), np.ceil(bounds[:, 2])], 1).astype(int)
    merger, kept = DuplicateMerger(0.3, 0.6), []
    stripes = (extent[:, 0] // 15) * 15  # candidates grouped like rows of tiles
    for stripe in np.unique(stripes):
        pick = np.flatnonzero(stripes == stripe)
        batch = {"geometry": geoms[pick], "score": scores[pick], "class_id": np.ones(len(pick)),
                 "extent": extent[pick], "index": pick}
        done, top = merger.feed(batch, stripe)
        assert top <= stripe
        kept += done["index"].tolist() if done else []
    done, _ = merger.feed({}, float("inf"))
    kept += done["index"].tolist()
    assert merger.duplicates > 50 and not merger.active["uid"].size
    assert sorted(kept) == greedy(geoms, scores, 0.3, 0.6)


def test_instances_to_map_polygons_and_centres():
    mask = np.zeros((20, 20), bool)
    mask[2:8, 3:9] = True
    mask[4:6, 5:7] = False  # a hole
    mask[15:17, 15:17] = True  # a smaller second part
    tile = Window(40, 60, 20, 20)
    [record] = instances_to_map([Instance(2, 0.75, mask, (2, 3, 17, 17))], tile,
                                TRANSFORM @ Affine.translation(60, 40))
    assert record["area"] == 32 * 0.25 and record["geometry"].is_valid
    assert len(record["geometry"].interiors) == 1
    assert (record["centre_row"], record["centre_col"]) == (49.5, 70.0)
    assert record["geometry"].bounds == (1000 + 63 * 0.5, 2000 - 48 * 0.5, 1000 + 69 * 0.5,
                                         2000 - 42 * 0.5)
    [multi] = instances_to_map([Instance(2, 0.75, mask, (2, 3, 17, 17))], tile, TRANSFORM,
                               multipart=True)
    assert multi["area"] == 36 * 0.25 and multi["geometry"].geom_type == "MultiPolygon"


def test_tiles_out_of_order_are_refused(tmp_path):
    stitcher = InstanceStitcher(info(), tmp_path / "x.gpkg")
    stitcher.add_tile(Window(20, 0, 32, 32), Window(26, 0, 20, 26), [])
    with pytest.raises(DeepSegError, match="row-major"):
        stitcher.add_tile(Window(0, 0, 32, 32), Window(0, 0, 26, 26), [])

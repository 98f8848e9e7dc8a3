"""Benchmark: stitching ~700,000 tree crowns predicted on the DESIGN §4 tile grid.

A 146,400 x 237,600 px raster at 0.1 m, 1024 px tiles with 256 px overlap (191 x 310 =
59,210 tiles, the lead's grid rule), round crowns of radius 3-15 m on a jittered grid. Each
tile reports every crown it sees, as a model would: whole crowns as 33-vertex polygons with
jitter in centre, radius and score; crowns cut by the tile edge get their clipped extent (and
their clipped polygon at the raster edge, where ownership may keep them). Detections go
through the same ownership and merge code as predicted masks (``add_polygons``). Generation
is timed apart from stitching; stitching is timed in wall and CPU seconds (the machine may
be shared). Peak memory: ru_maxrss of the whole process, before ``--check``.

    .venv/bin/python benchmarks/stitch.py                  # everything, ids burned to /dev/null
    .venv/bin/python benchmarks/stitch.py --rows 80        # the first 80 rows of tiles
    .venv/bin/python benchmarks/stitch.py --no-raster --check
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyogrio
import shapely
from affine import Affine

from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.stages.predict.instances.options import StitchOptions
from deepseg_core.stages.predict.instances.stitcher import InstanceStitcher

WIDTH, HEIGHT, TILE, OVERLAP, PIXEL = 146_400, 237_600, 1024, 256, 0.1
TRANSFORM = Affine(PIXEL, 0, 500_000.0, 0, -PIXEL, 6_500_000.0)
CIRCLE = np.exp(2j * np.pi * np.arange(33) / 32)  # closed ring: last point = first


def origins(size):
    return list(range(0, size - TILE, TILE - OVERLAP)) + [size - TILE]


def cuts(starts, size):
    return np.array([0] + [(b + a + TILE) // 2 for a, b in zip(starts, starts[1:])] + [size])


def crowns(spacing, seed):
    """Crown centres (row, col) on a jittered grid and radii in pixels, sorted by row."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.arange(spacing / 2, HEIGHT, spacing),
                             np.arange(spacing / 2, WIDTH, spacing), indexing="ij")
    centre = np.stack([rows.ravel(), cols.ravel()], 1) + rng.uniform(-40, 40, (rows.size, 2))
    radius = rng.uniform(30, 150, rows.size)
    keep = (centre[:, 0] > 0) & (centre[:, 0] < HEIGHT) & (centre[:, 1] > 0) & (
        centre[:, 1] < WIDTH)
    order = np.argsort(centre[keep, 0])
    return centre[keep][order], radius[keep][order], rng.uniform(0.3, 0.95, keep.sum())[order]


def tile_row_detections(r, col_starts, centre, radius, score, rng):
    """Every crown each tile of the row starting at raster row ``r`` sees, tile by tile."""
    lo, hi = np.searchsorted(centre[:, 0], [r - 160, r + TILE + 160])
    idx = np.arange(lo, hi)
    idx = idx[(centre[idx, 0] + radius[idx] > r) & (centre[idx, 0] - radius[idx] < r + TILE)]
    ends = np.array(col_starts) + TILE
    first = np.searchsorted(ends, centre[idx, 1] - radius[idx], "right")
    last = np.searchsorted(col_starts, centre[idx, 1] + radius[idx], "left")
    crown = np.repeat(idx, last - first)
    tile = np.concatenate([np.arange(a, b) for a, b in zip(first, last)]).astype(int)
    n = len(crown)
    cy = centre[crown, 0] + rng.normal(0, 0.5, n)
    cx = centre[crown, 1] + rng.normal(0, 0.5, n)
    rad = radius[crown] + rng.normal(0, 0.5, n)
    ring = (cx[:, None] + 1j * cy[:, None]) + rad[:, None] * CIRCLE  # pixel coordinates
    x0, x1 = np.array(col_starts)[tile], ends[tile]
    y0, y1 = max(r, 0), min(r + TILE, HEIGHT)
    extent = np.stack([np.floor(cy - rad), np.floor(cx - rad),
                       np.ceil(cy + rad), np.ceil(cx + rad)], 1)
    top, bottom = np.full(n, y0), np.full(n, y1)
    extent = np.clip(extent, np.stack([top, x0, top, x0], 1), np.stack([bottom, x1, bottom, x1], 1))
    geoms = shapely.polygons(np.stack([TRANSFORM.c + PIXEL * ring.real,
                                       TRANSFORM.f - PIXEL * ring.imag], -1))
    cut = ((cy - rad < 0) & (y0 == 0)) | ((cy + rad > HEIGHT) & (y1 == HEIGHT)) | (
        (cx - rad < 0) & (x0 == 0)) | ((cx + rad > WIDTH) & (x1 == WIDTH))  # by the raster edge
    geoms[cut] = shapely.intersection(geoms[cut], shapely.box(
        TRANSFORM.c + PIXEL * x0[cut], TRANSFORM.f - PIXEL * y1,
        TRANSFORM.c + PIXEL * x1[cut], TRANSFORM.f - PIXEL * y0))
    scores = np.clip(score[crown] + rng.normal(0, 0.02, n), 0, 1)
    order = np.argsort(tile, kind="stable")
    return tile[order], geoms[order], scores[order], extent[order].astype(int)


def run(args):
    centre, radius, score = crowns(args.spacing, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    row_starts, col_starts = origins(HEIGHT)[:args.rows], origins(WIDTH)
    row_cuts, col_cuts = cuts(origins(HEIGHT), HEIGHT), cuts(col_starts, WIDTH)
    info = RasterInfo(WIDTH, HEIGHT, 1, "uint32", crs="EPSG:32632", transform=TRANSFORM)
    burned = [0, 0, 0]  # pixels, blocks, pixels inside crowns in every 50th block

    def write_block(array, window):  # a sink that costs nothing: the burn alone is timed
        burned[0] += array.size
        burned[1] += 1
        if burned[1] % 50 == 0:
            burned[2] += int(np.count_nonzero(array)) * 50

    out = Path(args.out or tempfile.mkdtemp()) / "instances.gpkg"
    stitcher = InstanceStitcher(info, out, ("background", "crown"),
                                None if args.no_raster else write_block,
                                StitchOptions(write_empty=False))
    generate = stitch = cpu = 0.0
    for i, r in enumerate(row_starts):
        t0 = time.perf_counter()
        tile, geoms, scores, extent = tile_row_detections(r, col_starts, centre, radius,
                                                                 score, rng)
        bounds = np.searchsorted(tile, np.arange(len(col_starts) + 1))
        t1, c1 = time.perf_counter(), time.process_time()
        for j, c in enumerate(col_starts):
            s = slice(bounds[j], bounds[j + 1])
            tw = Window(r, c, TILE, TILE)
            core = Window(row_cuts[i], col_cuts[j], row_cuts[i + 1] - row_cuts[i],
                          col_cuts[j + 1] - col_cuts[j])
            stitcher.add_polygons(tw, core, geoms[s], np.ones(s.stop - s.start, int),
                                  scores[s], extent[s])
        t2 = time.perf_counter()
        generate, stitch = generate + t1 - t0, stitch + t2 - t1
        cpu += time.process_time() - c1
    t0, c0 = time.perf_counter(), time.process_time()
    summary = stitcher.finish()
    stitch, cpu = stitch + time.perf_counter() - t0, cpu + time.process_time() - c0
    last_row = row_cuts[len(row_starts)]
    truth = int(np.count_nonzero(centre[:, 0] < last_row))
    print(f"tiles {summary['tiles']:,} ({len(row_starts)} rows x {len(col_starts)}), "
          f"crowns {truth:,}, detections {summary['detections']:,}, "
          f"owned {summary['candidates']:,}, duplicates removed {summary['duplicates']:,}, "
          f"instances {summary['instances']:,}")
    print(f"stitching {stitch:.1f} s wall, {cpu:.1f} s CPU (ownership, merge, GeoPackage"
          f"{'' if args.no_raster else ', id raster'}); generating detections {generate:.1f} s")
    if not args.no_raster:
        print(f"id raster: {burned[0] / 1e9:.2f} G pixels burned in {burned[1]:,} blocks, "
              f"about {burned[2] / max(burned[0], 1):.0%} inside crowns")
    print(f"peak memory (ru_maxrss) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
          f" MiB; GeoPackage {out.stat().st_size / 2**20:.0f} MiB at {out}")
    if args.check:
        check(out, centre[:truth], radius[:truth])


def check(path, centre, radius):
    """Match output polygons to crowns (nearest centre, IoU > 0.5): found, missed, doubled."""
    geoms = pyogrio.read_dataframe(path, columns=[]).geometry.to_numpy()
    geoms = shapely.transform(geoms, lambda xy: (xy - (TRANSFORM.c, TRANSFORM.f)) / (PIXEL, -PIXEL))
    tree = shapely.STRtree(shapely.points(centre[:, 1], centre[:, 0]))
    hit, crown = tree.query_nearest(shapely.centroid(geoms), max_distance=80, all_matches=False)
    truth = shapely.intersection(shapely.buffer(shapely.points(centre[crown, 1], centre[crown, 0]),
                                                radius[crown], quad_segs=8),
                                 shapely.box(0, 0, WIDTH, HEIGHT))
    inter = shapely.area(shapely.intersection(geoms[hit], truth))
    good = inter / (shapely.area(geoms[hit]) + shapely.area(truth) - inter) > 0.5
    counts = np.bincount(crown[good], minlength=len(centre))
    big = 2 * radius + 2 > OVERLAP
    print(f"check: {np.count_nonzero(counts == 1):,} crowns found once, "
          f"{np.count_nonzero(counts > 1):,} more than once, {np.count_nonzero(counts == 0):,} "
          f"missed ({np.count_nonzero((counts == 0) & big):,} of them wider than the overlap, "
          f"which no tile may see whole), {len(geoms) - np.count_nonzero(good):,} polygons "
          f"matching no crown")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="rows of tiles (default: all)")
    parser.add_argument("--spacing", type=float, default=223.0, help="crown spacing, px")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for instances.gpkg (default: a temporary one)")
    parser.add_argument("--no-raster", action="store_true", help="do not burn the id raster")
    parser.add_argument("--check", action="store_true", help="match outputs to the crowns")
    run(parser.parse_args())


if __name__ == "__main__":
    main()

"""Instance prediction: per-tile instances -> stitched GeoPackage polygons + instance-id raster.

A single run stitches tiles as they arrive (row-major) and writes both outputs under
temporary names, renamed when complete. A shard writes its owned, undecided candidates to
``<output>.part-i-of-N.gpkg``; the merge resolves duplicates across shard boundaries exactly
as a single run would. An interrupted instance shard restarts from its first tile.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..stitch import InstanceStitcher
from ..stitch_shards import merge_shards
from .assemble import temporary


def instance_info(job):
    """The output raster of an instance prediction: uint32 ids, 0 = nodata."""
    return job.info.with_(dtype="uint32", nodata=0, colormap=None, class_names=None,
                          descriptions=("instance",))


def candidates_path(job, out: Path, i: int, n: int) -> Path:
    return job.partial_path(out, i, n).with_suffix(".gpkg")


def options(exp) -> dict:
    return {"iou": exp.predict.merge_iou, "ios": exp.predict.merge_ios}


def tile_consumer(exp, stitcher, cores: dict):
    """Feed each finished tile's instances (above the score threshold) to the stitcher."""
    threshold = exp.predict.score_threshold

    def consume(job):
        found = [] if job.result is None else [
            inst for inst in job.result.instances if inst.score >= threshold]
        stitcher.add_tile(job.window, cores[job.index], found)

    return consume


def stitch_single(exp, registry, job, out: Path, run_tiles) -> list[Path]:
    """Predict every tile and stitch into ``out`` (id raster) and ``out.gpkg``."""
    info = instance_info(job)
    gpkg = out.with_suffix(".gpkg")
    tmp_raster, tmp_gpkg = temporary(out), temporary(gpkg)
    writer = registry.writer_for(out, exp.predict.format)
    try:
        tmp_gpkg.unlink(missing_ok=True)
        with writer.create(tmp_raster, info) as sink:
            stitcher = InstanceStitcher(info, tmp_gpkg, exp.class_names, sink.write,
                                        **options(exp))
            run_tiles(stitcher)
            stitcher.finish()
        os.replace(tmp_gpkg, gpkg)
        os.replace(tmp_raster, out)
    finally:
        tmp_raster.unlink(missing_ok=True)
        tmp_gpkg.unlink(missing_ok=True)
    return [out, gpkg]


def stitch_shard(exp, job, out: Path, i: int, n: int, run_tiles) -> Path:
    """Predict one shard's tiles; its owned candidates go to a GeoPackage beside the output."""
    final = candidates_path(job, out, i, n)
    tmp = temporary(final)
    tmp.unlink(missing_ok=True)
    try:
        stitcher = InstanceStitcher(instance_info(job), tmp, exp.class_names, shard=True,
                                    **options(exp))
        run_tiles(stitcher)
        stitcher.finish()
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def merge_instance_shards(exp, registry, job, out: Path, n: int) -> list[Path]:
    """Merge every shard's candidates into the final GeoPackage and id raster."""
    from ..errors import DeepSegError

    paths = [candidates_path(job, out, i, n) for i in range(n)]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise DeepSegError(f"prediction shards not finished: {', '.join(missing)}")
    info = instance_info(job)
    gpkg = out.with_suffix(".gpkg")
    tmp_raster, tmp_gpkg = temporary(out), temporary(gpkg)
    try:
        tmp_gpkg.unlink(missing_ok=True)
        with registry.writer_for(out, exp.predict.format).create(tmp_raster, info) as sink:
            merge_shards(paths, info, tmp_gpkg, exp.class_names, sink.write, **options(exp))
        os.replace(tmp_gpkg, gpkg)
        os.replace(tmp_raster, out)
    finally:
        tmp_raster.unlink(missing_ok=True)
        tmp_gpkg.unlink(missing_ok=True)
    for path in paths:
        path.unlink(missing_ok=True)
    return [out, gpkg]

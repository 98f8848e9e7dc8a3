"""Instance prediction: per-tile instances -> stitched GeoPackage polygons + instance-id raster.

A single run stitches tiles as they arrive (row-major) and writes both outputs under
temporary names, renamed when complete. A shard writes its owned, undecided candidates to
``<output>.part-i-of-N.gpkg``; the merge resolves duplicates across shard boundaries exactly
as a single run would. An interrupted shard resumes after its last finished row of tiles
(a single run, whose duplicate merging lives in memory, starts again).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..instance_table import attach_instance_table
from ..sidecars import remove_output, replace_output
from ..stitch import InstanceStitcher
from ..stitch_output import read_candidates
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
        attach_instance_table(writer, tmp_raster, tmp_gpkg)  # class names of the ids
        os.replace(tmp_gpkg, gpkg)
        replace_output(tmp_raster, out)
    finally:
        remove_output(tmp_raster)
        tmp_gpkg.unlink(missing_ok=True)
    return [out, gpkg]


def stitch_shard(exp, job, out: Path, i: int, n: int, run_tiles) -> Path:
    """Predict one shard's tiles; its owned candidates go to a GeoPackage beside the output.

    Each finished row of tiles is committed: its candidates written, then the number of
    tiles done recorded in ``*.progress.json``. A rerun after a kill or requeue with the same
    settings takes back the committed candidates and goes on from the next tile.
    """
    final = candidates_path(job, out, i, n)
    work = temporary(final)
    kept = work.with_name(f"{work.stem}.resume.gpkg")
    progress = work.with_name(f"{work.stem}.progress.json")
    key = {**job.key, "shard": [i, n], "score_threshold": exp.predict.score_threshold}
    state = _load_progress(progress, key) if work.exists() or kept.exists() else None
    if state is None:
        for path in (work, kept, progress):
            path.unlink(missing_ok=True)
    elif kept.exists():  # a resume was itself interrupted while copying: copy again
        work.unlink(missing_ok=True)
    else:
        os.replace(work, kept)

    def commit(stripe, tiles):
        _save_progress(progress, key, stripe, tiles)

    stitcher = InstanceStitcher(instance_info(job), work, exp.class_names, shard=True,
                                on_commit=commit, **options(exp))
    start = 0
    if state is not None:
        start = state["tiles"]
        stitcher.resume(((s, c) for s, c in read_candidates(kept) if s <= state["stripe"]),
                        state["stripe"], start)
        kept.unlink()
        click.echo(f"resuming shard {i}/{n} after {start} tiles")
    run_tiles(stitcher, start)
    stitcher.finish()
    os.replace(work, final)
    progress.unlink(missing_ok=True)
    return final


def _load_progress(path: Path, key: dict) -> dict | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("key") == key else None


def _save_progress(path: Path, key: dict, stripe: int, tiles: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"key": key, "stripe": int(stripe), "tiles": int(tiles)}))
    os.replace(tmp, path)


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
        attach_instance_table(registry.writer_for(out, exp.predict.format), tmp_raster, tmp_gpkg)
        os.replace(tmp_gpkg, gpkg)
        replace_output(tmp_raster, out)
    finally:
        remove_output(tmp_raster)
        tmp_gpkg.unlink(missing_ok=True)
    for path in paths:
        path.unlink(missing_ok=True)
    return [out, gpkg]

"""Instance prediction: per-tile instances -> stitched GeoPackage polygons + instance-id raster.

Every run is made of shards (an unsharded run is shard 0 of 1). A shard writes its owned,
undecided candidates to ``<output>.part-i-of-N.gpkg``; the merge resolves duplicates across
shard boundaries exactly as one pass over all tiles would, and writes both outputs under
temporary names, verified and renamed when complete. An interrupted shard resumes after its
last committed row of tiles (docs/crash-safety.md).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....errors import DeepSegError, io_error
from ....io.atomic import fsync_dir, replace_durably, temporaries, write_text
from ....io.sidecars import remove_output
from ....styles.layers import crowns_style, write_layer_style
from ..assemble import Checked, incomplete, verify
from ..key import mismatch
from ..plan import Plan, Route, Shard
from .merge import merge_shards
from .output import read_candidates
from .stitcher import InstanceStitcher
from .table import INSTANCE_LAYER, attach_instance_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ....contracts.raster import RasterInfo, Window
    from ....inference.pipeline import Consume, TileJob
    from ....inference.stream import TileRunner
    from ....plugins.registry import Registry

log = logging.getLogger(__name__)


def instance_info(plan: Plan) -> RasterInfo:
    """The output raster of an instance prediction: uint32 ids, 0 = nodata."""
    return plan.info.with_(dtype="uint32", nodata=0, colormap=None, class_names=None,
                           descriptions=("instance",))


def candidates_path(plan: Plan, i: int, n: int) -> Path:
    """The GeoPackage of shard i of n's candidates."""
    base = plan.partial_base(i, n)
    return base.with_name(base.name + ".gpkg")


def tile_consumer(threshold: float, stitcher: InstanceStitcher,
                  cores: Sequence[Window]) -> Consume:
    """Feed each finished tile's instances (above the score threshold) to the stitcher."""

    def consume(job: TileJob) -> None:
        found = [] if job.result is None else [
            inst for inst in job.result.instances if inst.score >= threshold]
        stitcher.add_tile(job.window, cores[job.index], found)

    return consume


def stitch_shard(plan: Plan, shard: Shard, run_tiles: TileRunner) -> Path:
    """Predict one shard's tiles; its owned candidates go to a GeoPackage beside the output.

    Each finished row of tiles is committed: its candidates written (SQLite commits them
    durably), then the number of tiles done recorded in ``*.progress.json`` (atomically). A
    rerun with the same settings copies the committed candidates into a new file and goes on
    from the next tile; candidates of uncommitted rows are left behind.
    """
    s, i, n = plan.settings, shard.i, shard.n
    final = candidates_path(plan, i, n)
    work = incomplete(final)
    kept = work.with_name(f"{work.stem}.resume.gpkg")
    progress = work.with_name(f"{work.stem}.progress.json")
    key, marker = plan.shard_key(i, n), final.with_name(final.name + ".json")
    if final.exists() and _load_progress(marker, key):
        log.info(f"shard {i}/{n} already complete: {final}")
        return final
    if final.exists():  # of other inputs or settings, or its marker never written
        log.info(f"{final}: {mismatch('it', _marker_key(marker), key)}: predicting it again")
        for path in (marker, final):
            path.unlink(missing_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    state = _load_progress(progress, key) if work.exists() or kept.exists() else None
    if state is None:
        for path in (work, kept, progress):
            path.unlink(missing_ok=True)
    elif kept.exists():  # a resume was itself interrupted while copying: copy again
        work.unlink(missing_ok=True)
    else:
        recover(work)
        os.replace(work, kept)
        fsync_dir(kept.parent)

    def commit(stripe: int, tiles: int) -> None:
        write_text(progress, json.dumps({"key": key, "stripe": int(stripe),
                                           "tiles": int(tiles)}))

    stitcher = InstanceStitcher(instance_info(plan), work, s.classes, None, s.stitch,
                                shard=True, on_commit=commit)
    start = 0
    if state is not None:
        start = state["tiles"]
        stitcher.resume(((r, c) for r, c in read_candidates(kept) if r <= state["stripe"]),
                        state["stripe"], start)
        kept.unlink()
        log.info(f"resuming shard {i}/{n} after {start} tiles")
    run_tiles(tile_consumer(s.score_threshold, stitcher, shard.cores), start)
    stitcher.finish()
    replace_durably(work, final)
    write_text(marker, json.dumps({"key": key}))  # last: it says the final file is this key's
    for path in (progress, *temporaries(progress)):
        path.unlink(missing_ok=True)
    return final


def recover(gpkg: Path) -> None:
    """Let SQLite roll back what a killed writer left half-done (its hot journal), before the
    file is renamed away from that journal."""
    connection = sqlite3.connect(gpkg)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        connection.close()


def shard_files(plan: Plan, i: int, n: int) -> list[Path]:
    """Every file a shard may leave: candidates, records, working copies, temporaries."""
    final = candidates_path(plan, i, n)
    work = incomplete(final)
    progress = work.with_name(f"{work.stem}.progress.json")
    marker = final.with_name(final.name + ".json")
    return [final, marker, *temporaries(marker), work,
            work.with_name(f"{work.stem}.resume.gpkg"), progress, *temporaries(progress)]


def _load_progress(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("key") == key else None


def _marker_key(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state.get("key") if isinstance(state, dict) else None


def merge_instance_shards(plan: Plan, registry: Registry, n: int) -> list[Path]:
    """Merge every shard's candidates into the final GeoPackage and id raster."""
    s = plan.settings
    out = s.output
    paths = [candidates_path(plan, i, n) for i in range(n)]
    for i, path in enumerate(paths):
        redo = f"run 'deepseg predict --shard {i}/{n}' first"
        found = _marker_key(path.with_name(path.name + ".json"))
        if not path.exists() or found is None:
            raise DeepSegError(f"{path}: prediction shard {i}/{n} missing or unfinished; "
                               f"{redo}")
        if found != plan.shard_key(i, n):
            what = mismatch(f"prediction shard {i}/{n}", found, plan.shard_key(i, n))
            raise DeepSegError(f"{path}: {what}; {redo}")
    info = instance_info(plan)
    gpkg = out.with_suffix(".gpkg")
    tmp_raster, tmp_gpkg = incomplete(out), incomplete(gpkg)
    try:
        tmp_gpkg.unlink(missing_ok=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        with registry.writer_for(out, s.format).create(tmp_raster, info) as sink:
            checked = Checked(sink.write)
            merge_shards(paths, info, tmp_gpkg, s.classes, checked, s.stitch)
        verify(tmp_raster, registry.reader_for, info, checked.blocks)
        write_layer_style(tmp_gpkg, INSTANCE_LAYER, crowns_style(s.classes, s.colours),
                          "DeepSeg: every crown outlined in its class colour")
        attach_instance_table(registry.writer_for(out, s.format), tmp_raster, tmp_gpkg)
        replace_durably(tmp_gpkg, gpkg)
        replace_durably(tmp_raster, out)
    except OSError as exc:
        raise io_error(out, exc, "cannot write the prediction") from None
    except DeepSegError:
        raise
    except Exception as exc:  # pyogrio/GDAL errors: a full disk while writing the GeoPackage
        raise DeepSegError(f"{gpkg}: cannot write the instances "
                           f"({' '.join(str(exc).split())})") from None
    finally:
        remove_output(tmp_raster)
        tmp_gpkg.unlink(missing_ok=True)
    return [out, gpkg]


def remove_shards(plan: Plan, n: int) -> None:
    """Delete the ``n`` shards' files (once the outputs are published)."""
    for i in range(n):
        for path in shard_files(plan, i, n):
            path.unlink(missing_ok=True)


INSTANCES = Route(stitch_shard, merge_instance_shards, remove_shards)

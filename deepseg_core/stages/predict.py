"""Predict: stream a trained model over whole rasters, tile by tile, resumable and shardable."""

from __future__ import annotations

import warnings
from pathlib import Path

import click
import numpy as np

from ..errors import DeepSegError
from ..model_files import pick_weights, read_model_info
from ..prediction.assemble import assemble
from ..prediction.instance import (
    merge_instance_shards,
    stitch_shard,
    stitch_single,
    tile_consumer,
)
from ..prediction.partial import Partial
from ..prediction.pipeline import run_pipeline
from ..prediction.semantic import BlendWriter, CoreWriter
from ..progress import Progress
from ..raster import RasterInfo, parse_colour
from ..stack import ImageStack, same_crs
from ..stats import normalizer
from ..tiling import tile_cores


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/N' -> (i, N); None -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise DeepSegError(f"--shard: expected 'i/N' such as 0/4, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise DeepSegError(f"--shard: {text!r} needs 0 <= i < N")
    return i, n


def load_model_info(exp) -> tuple[dict, Path]:
    """model.json and the weights file of the trained model (best, else last)."""
    model_dir = exp.outdir / "model"
    info_path = model_dir / "model.json"
    if not info_path.exists():
        raise DeepSegError(f"no trained model in {model_dir}: run 'deepseg train' first")
    weights = pick_weights(model_dir)  # best.keras unless damaged, then last.keras (warns)
    if weights is None:
        raise DeepSegError(f"no trained model in {model_dir}: run 'deepseg train' first")
    info = read_model_info(info_path)
    if info["nbands"] != exp.nbands or info["classes"] != exp.class_names:
        raise DeepSegError(f"the model in {model_dir} was trained with nbands={info['nbands']} "
                           f"and classes {info['classes']}, the experiment has "
                           f"nbands={exp.nbands} and classes {exp.class_names}")
    return info, weights


def output_path(exp) -> Path:
    out = Path(exp.predict.output)
    return out if out.is_absolute() else exp.outdir / out


class Job:
    """Everything one prediction run needs: grid, tiles, shards, output description."""

    def __init__(self, exp, registry, info):
        images = exp.predict.images or exp.images
        self.stack = ImageStack(images, registry, exp.crs, exp.resolution,
                                key="predict.images" if exp.predict.images else "images")
        grid = self.stack.grid
        if self.stack.nbands != info["nbands"]:
            self.stack.close()
            raise DeepSegError(f"{exp.source}: the prediction images stack to "
                               f"{self.stack.nbands} bands, the model takes {info['nbands']}")
        if info.get("crs") and not same_crs(grid.crs, info["crs"]):
            self.stack.close()
            raise DeepSegError(f"{exp.source}: the prediction grid's CRS differs from the "
                               "training CRS; set 'crs' (and 'reproject: true' on the images)")
        res = abs(grid.transform.a)
        if info.get("resolution") and not 0.67 < res / info["resolution"] < 1.5:
            warnings.warn(f"prediction resolution {res} is far from the training resolution "
                          f"{info['resolution']}", stacklevel=2)
        self.windows = registry.get("tiler", exp.tiler)(grid.width, grid.height, exp.tilesize,
                                                        exp.overlap)
        self.cores = tile_cores(self.windows, grid.width, grid.height)
        nclasses = len(exp.classes)
        dtype = "uint8" if nclasses < 255 else "uint16"
        self.nodata = 255 if dtype == "uint8" else 65535
        colours = {i: parse_colour(c.color) for i, c in enumerate(exp.classes)}
        self.info = RasterInfo(grid.width, grid.height, 1, dtype, grid.crs, grid.transform,
                               self.nodata, ("class",), colours, tuple(exp.class_names), True)
        self.layers = {"classes": (1, dtype, self.nodata)}
        if exp.predict.probabilities != "none":
            fill = 0 if exp.predict.probabilities == "uint8" else np.nan
            self.layers["probabilities"] = (nclasses, exp.predict.probabilities, fill)
        self.key = {"tilesize": exp.tilesize, "overlap": exp.overlap, "blend": exp.predict.blend,
                    "probabilities": exp.predict.probabilities, "width": grid.width,
                    "height": grid.height, "weights_mtime": info.get("_mtime")}

    def shard(self, i: int, n: int, context: int = 0):
        """(tile indices, first row, end row) of shard i of n: a band of whole tile rows,
        plus ``context`` tile rows on each side (read, not owned)."""
        starts = sorted({w.row_off for w in self.windows})
        lo, hi = len(starts) * i // n, len(starts) * (i + 1) // n
        if lo == hi:
            return [], 0, 0
        own = set(starts[lo:hi])
        rows = set(starts[max(lo - context, 0):hi + context])
        idx = [k for k, w in enumerate(self.windows) if w.row_off in rows]
        owned = [k for k in idx if self.windows[k].row_off in own]
        last = self.cores[owned[-1]]
        return idx, self.cores[owned[0]].row_off, last.row_off + last.height

    def partial_path(self, out: Path, i: int, n: int) -> Path:
        return out.with_name(f"{out.name}.part-{i:04d}-of-{n:04d}.h5")


def run(exp, registry, shard=None, merge=False, progress=True, stop_after=None):
    """Predict (one shard, or everything), then assemble the output unless sharded."""
    info, weights = load_model_info(exp)
    info["_mtime"] = int(weights.stat().st_mtime)
    out = output_path(exp)
    i, n = parse_shard(shard)
    job = Job(exp, registry, info)
    instance = exp.segmentation_type == "instance"
    try:
        if merge:
            n = _count_shards(job, out)
            if instance:
                return _report(merge_instance_shards(exp, registry, job, out, n))[0]
            return _assemble(exp, registry, job, out, n)
        done = _predict_shard(exp, registry, job, info, weights, out, i, n, progress,
                              stop_after)
        if n > 1:
            click.echo(f"shard {i}/{n} done; run 'deepseg merge' when every shard is done")
            return done
        return _report(done)[0] if instance else _assemble(exp, registry, job, out, 1)
    finally:
        job.stack.close()


def _report(outputs):
    click.echo("prediction: " + ", ".join(str(p) for p in outputs))
    return outputs


def _count_shards(job, out: Path) -> int:
    found = sorted(out.parent.glob(f"{out.name}.part-*-of-*.*"))
    if not found:
        raise DeepSegError(f"no prediction shards beside {out}: run 'deepseg predict --shard "
                           "i/N' first")
    return int(found[0].name.rsplit("-of-", 1)[1].split(".")[0])


def _tile_runner(exp, registry, job, info, weights, windows, label, progress, stop_after):
    """``run(consume, start)``: stream ``windows[start:]`` through the model into ``consume``."""
    from .. import keras_runtime

    plugin, model = keras_runtime.load_model(registry, info, weights)
    normalize = normalizer(info["stats"])

    def read(window):
        image, valid = job.stack.read(window)
        image = normalize(np.moveaxis(image, 0, -1))
        image[~valid] = 0.0
        return image, valid

    def run(consume, start=0):
        bar = Progress(len(windows) - start, label, enabled=progress)
        counter = {"n": 0}

        def write(tile):
            consume(tile)
            bar.update()
            counter["n"] += 1
            counter["skipped"] = counter.get("skipped", 0) + (tile.result is None)
            if stop_after is not None and counter["n"] >= stop_after:
                raise KeyboardInterrupt("stopped by test hook")

        run_pipeline(read, windows, start, lambda x: plugin.predict_tiles(model, x), write,
                     exp.predict.batch_size or exp.training.batch_size, exp.predict.queue_depth)
        n, skipped = counter["n"], counter.get("skipped", 0)
        click.echo(f"{label}: {n - skipped} tiles predicted, {skipped} all-nodata tiles "
                   f"skipped, {bar.elapsed:.1f} s ({n / max(bar.elapsed, 1e-9):.1f} tiles/s)")

    return run


def _predict_shard(exp, registry, job, info, weights, out, i, n, progress, stop_after):
    idx, row0, row1 = job.shard(i, n, context=1 if exp.predict.blend and n > 1 else 0)
    windows = [job.windows[k] for k in idx]
    cores = {pos: job.cores[k] for pos, k in enumerate(idx)}
    label = f"predict shard {i}/{n}" if n > 1 else "predict"
    run = _tile_runner(exp, registry, job, info, weights, windows, label, progress, stop_after)
    if exp.segmentation_type == "instance":
        def stitch(stitcher, start=0):
            return run(tile_consumer(exp, stitcher, cores), start)

        if n == 1:
            return stitch_single(exp, registry, job, out, stitch)
        return stitch_shard(exp, job, out, i, n, stitch)
    partial = Partial(job.partial_path(out, i, n), row0, row1, job.info.width, job.layers,
                      {**job.key, "shard": [i, n]})
    try:
        if partial.complete:
            click.echo(f"shard {i}/{n} already complete: {partial.path}")
            return partial.path
        start = partial.done
        if exp.predict.blend:
            consume = BlendWriter(partial, cores, job.nodata, exp.predict.probabilities, windows,
                                  len(exp.classes), job.info.width,
                                  int(partial.file.attrs.get("row_floor", 0)))
            consume.row_start = start
        else:
            consume = CoreWriter(partial, cores, job.nodata, exp.predict.probabilities)
        if start:
            click.echo(f"resuming shard {i}/{n} after {start} of {len(windows)} tiles")
        run(consume, start)
        consume.finish(len(windows))
        return partial.path
    finally:
        partial.close()


def _assemble(exp, registry, job, out, n):
    writer = registry.writer_for(out, exp.predict.format)
    parts = [(job.partial_path(out, i, n), {**job.key, "shard": [i, n]}) for i in range(n)]
    assemble(parts, "classes", writer, out, job.info)
    outputs = [out]
    if "probabilities" in job.layers:
        prob_out = out.with_name(f"{out.stem}_probabilities{out.suffix}")
        bands, dtype, _ = job.layers["probabilities"]
        pinfo = job.info.with_(count=bands, dtype=dtype, colormap=None, class_names=None,
                               thematic=False, nodata=None if dtype == "uint8" else float("nan"),
                               descriptions=tuple(exp.class_names))
        outputs.append(assemble(parts, "probabilities", writer, prob_out, pinfo))
    if exp.predict.vectorize.enabled:
        from ..prediction.vectors import vectorize_output

        outputs.append(vectorize_output(exp, registry, out, job.info))
    for path, _ in parts:
        path.unlink(missing_ok=True)
    _report(outputs)
    return out

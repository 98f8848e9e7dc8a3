"""Prediction at 10^6 px on a side: peak memory and the time to the first tile (issue 24).

    python benchmarks/memory.py tiles [--sizes 10000 1000000] [--tiles 2000]
    python benchmarks/memory.py blend [--widths 10000 1000000] [--height 512]

tiles: a sparse 3-band GeoTIFF of size x size px (no block written: all nodata, a few MiB on
disk) predicted with 256 px tiles and 32 px overlap (20 million tiles at 10^6); each run stops
after its first ``--tiles`` tiles. Goal: the time before the first tile and the peak memory
do not grow with the raster.
blend: a textured raster of width x height px predicted whole with ``predict.blend`` (TinyFCN,
2 classes, 256 px tiles, 32 px overlap; the blending buffers hold the probabilities of both
classes, written or not). Goal: peak memory independent of the raster width.

Every run is a fresh process; the peak is the kernel's high-water mark of its resident memory
(VmHWM), read when the first tile reaches the writer and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from common import TRANSFORM, run_child

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

TILESIZE, OVERLAP = 256, 32


def peak_mib() -> float:
    """This process's peak resident memory so far (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def raster(path: Path, width: int, height: int, textured: bool) -> Path:
    """A tiled 3-band uint8 GeoTIFF (nodata 0): sparse (nothing written) or textured, written
    block by block so no strip of it is ever whole in memory."""
    import rasterio
    from rasterio.windows import Window

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                   crs="EPSG:2193", transform=TRANSFORM, nodata=0, tiled=True, blockxsize=1024,
                   blockysize=1024, compress="deflate", BIGTIFF="YES", SPARSE_OK=True)
    noise = np.random.default_rng(0).integers(0, 24, (3, 1024, 1024), dtype=np.uint8)
    with rasterio.open(path.with_suffix(".tmp.tif"), "w", **profile) as dst:
        for r in range(0, height, 1024) if textured else ():
            for c in range(0, width, 1024):
                h, w = min(1024, height - r), min(1024, width - c)
                rows = np.arange(r, r + h)[:, None] % 251
                base = (rows + np.arange(c, c + w)[None, :] % 241).astype(np.uint8)
                dst.write(1 + base[None] // 2 + noise[:, :h, :w], window=Window(c, r, w, h))
    path.with_suffix(".tmp.tif").rename(path)
    return path


def setup(folder: Path, image: Path, name: str, predict: dict):
    """Experiment and an untrained TinyFCN with its model.json."""
    import keras

    from deepseg_core.config import load_experiment
    from deepseg_core.models.folder import model_info
    from deepseg_core.plugins.manager import load_plugins
    from tests.support import models

    labels = folder / "none.gpkg"
    labels.write_text("")
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "workdir": str(folder), "tilesize": TILESIZE, "overlap": OVERLAP,
        "nbands": 3, "images": [str(image)], "labels": {"path": str(labels)},
        "classes": [{"name": "a"}, {"name": "b"}], "model": "tinyfcn",
        "training": {"batch_size": 8}, "predict": predict}))
    exp = load_experiment(path)
    registry = load_plugins(extra=[("testmodels", models)]).registry
    keras.utils.set_random_seed(0)
    net = registry.get("model", "tinyfcn").build(3, 2, TILESIZE, {})
    (exp.outdir / "model").mkdir(parents=True, exist_ok=True)
    net.save(exp.outdir / "model" / "best.keras")
    stats = {"count": [1] * 3, "mean": [100.0] * 3, "std": [50.0] * 3, "min": [0] * 3,
             "max": [255] * 3}
    model_info(exp, stats, [], None, 0.5).write(exp.outdir / "model" / "model.json")
    return exp, registry


def watch_writers(stop_after: int | None, began: float, figures: dict) -> None:
    """Wrap the predict writers' ``__call__``: note the first tile; stop after ``stop_after``."""
    from deepseg_core.stages.predict import writers

    for cls in (writers.CoreWriter, writers.BlendWriter):
        if "__call__" not in vars(cls):
            continue

        def call(self, job, _call=cls.__call__):
            if "first_tile_s" not in figures:
                figures["first_tile_s"] = time.perf_counter() - began
                figures["peak_at_first_tile_mib"] = peak_mib()
            _call(self, job)
            figures["tiles"] = figures.get("tiles", 0) + 1
            if stop_after is not None and figures["tiles"] >= stop_after:
                report(figures, began)
                os._exit(0)  # the measurement is taken: leave the rest of the raster
        cls.__call__ = call


def report(figures: dict, began: float) -> None:
    figures.update(seconds=time.perf_counter() - began, peak_mib=peak_mib())
    print(json.dumps(figures), flush=True)


def child(mode: str, folder: Path, width: int, height: int, tiles: int,
          stripe_width: int | None) -> None:
    from deepseg_core.stages import predict

    if mode == "tiles":
        image = raster(folder / f"sparse_{width}x{height}.tif", width, height, textured=False)
        settings: dict = {}
    else:
        image = raster(folder / f"textured_{width}x{height}.tif", width, height, textured=True)
        settings = {"blend": True}
        if stripe_width is not None:
            settings["stripe_width"] = stripe_width
    name = f"{mode}_{width}x{height}_{stripe_width or 'default'}"
    exp, registry = setup(folder, image, name, settings)
    figures = {"mode": mode, "width": width, "height": height, "peak_before_mib": peak_mib()}
    began = time.perf_counter()
    watch_writers(tiles if mode == "tiles" else None, began, figures)
    predict.run(exp, registry)
    report(figures, began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["tiles", "blend"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000],
                        help="tiles: raster sizes (px on a side)")
    parser.add_argument("--tiles", type=int, default=2000, help="tiles: stop after these")
    parser.add_argument("--widths", type=int, nargs="+", default=[10_000, 1_000_000],
                        help="blend: raster widths")
    parser.add_argument("--height", type=int, default=512, help="blend: raster height")
    parser.add_argument("--stripe-width", type=int, help="blend: predict.stripe_width")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deepseg-bench-memory"))
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--width", type=int)
    args = parser.parse_args()
    if args.child:
        return child(args.mode, args.workdir, args.width, args.height, args.tiles,
                     args.stripe_width)
    runs = ([(s, s) for s in args.sizes] if args.mode == "tiles"
            else [(w, args.height) for w in args.widths])
    for width, height in runs:
        extra = ["--stripe-width", str(args.stripe_width)] if args.stripe_width else []
        r = run_child(__file__, args.mode, "--width", str(width), "--height", str(height),
                      "--tiles", str(args.tiles), "--workdir", str(args.workdir), *extra)
        print(f"{width} x {height} px: first tile after {r['first_tile_s']:.1f} s (peak "
              f"{r['peak_at_first_tile_mib']:.0f} MiB then); {r['tiles']} tiles in "
              f"{r['seconds']:.1f} s; peak RSS {r['peak_mib']:.0f} MiB "
              f"({r['peak_before_mib']:.0f} MiB before predicting)")


if __name__ == "__main__":
    main()

"""Prediction pipeline cost and memory.

    python benchmarks/predict.py throughput [--size 1536] [--tilesize 256]
    python benchmarks/predict.py memory [--sizes 4000 40000]

throughput: end-to-end tiles/s of the predict stage with the full-size UNet64 (64 filters,
depth 4) against the same model's bare ``predict`` on the same tiles already in memory.
Goal: the pipeline costs at most 3 % end to end on CPU, with the kernels users get by default.
memory: peak resident memory of predicting a one-layer model over synthetic 3-band uint8
rasters of each size (each in its own process). Goal: the largest at most 1.15x the smallest.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from common import run_child, synthetic_raster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support


def setup(folder: Path, size: int, model: str, tilesize: int, overlap: int):
    """Raster, experiment and an (untrained) saved model with its model.json."""
    import keras

    from deepseg_core.config import load_experiment
    from deepseg_core.models.folder import model_info
    from deepseg_core.plugins.manager import load_plugins
    from tests.support import models

    image = synthetic_raster(folder / f"synthetic_{size}.tif", size)
    labels = folder / "none.gpkg"
    labels.write_text("")
    path = folder / f"predict_{model}_{size}.yaml"
    path.write_text(yaml.safe_dump({
        "name": f"predict_{model}_{size}", "workdir": str(folder), "tilesize": tilesize,
        "overlap": overlap, "nbands": 3, "images": [str(image)],
        "labels": {"path": str(labels)}, "classes": [{"name": "a"}, {"name": "b"}],
        "model": model, "training": {"batch_size": 4}}))
    exp = load_experiment(path)
    registry = load_plugins(extra=[("testmodels", models)]).registry
    keras.utils.set_random_seed(0)
    net = registry.get("model", exp.model.name).build(3, 2, tilesize, exp.model.params)
    (exp.outdir / "model").mkdir(parents=True, exist_ok=True)
    net.save(exp.outdir / "model" / "best.keras")
    # a fixed normalization: only speed and memory are measured here
    stats = {"count": [1] * 3, "mean": [100.0] * 3, "std": [50.0] * 3, "min": [0] * 3,
             "max": [255] * 3}
    model_info(exp, stats, [], None, 0.5).write(exp.outdir / "model" / "model.json")
    return exp, registry, net


def throughput(folder: Path, size: int, tilesize: int) -> None:
    from deepseg_core.data.bandstats import normalizer
    from deepseg_core.models.folder import trained_model
    from deepseg_core.stages import predict

    exp, registry, net = setup(folder, size, "unet64", tilesize, 32)
    trained = trained_model(exp.outdir, exp.nbands, exp.class_names)
    start = time.perf_counter()
    trained.load(registry)
    load = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    predict.run(exp, registry)
    pipeline, pipeline_cpu = time.perf_counter() - start, time.process_time() - cpu
    from deepseg_core.stages.predict.plan import Plan, Settings

    job = Plan(Settings.of(exp), registry, trained)
    normalize = normalizer(trained.info.stats)
    tiles = np.stack([normalize(np.moveaxis(job.stack.read(w)[0], 0, -1)) for w in job.windows])
    job.stack.close()
    start, cpu = time.perf_counter(), time.process_time()
    net.predict(tiles, batch_size=4, verbose=0)
    bare, bare_cpu = time.perf_counter() - start, time.process_time() - cpu
    n = len(tiles)
    print(f"pipeline: {n} tiles of {tilesize} px in {pipeline:.1f} s = {n / pipeline:.2f} tiles/s")
    print(f"bare model.predict on in-memory tiles: {bare:.1f} s = {n / bare:.2f} tiles/s")
    print(f"pipeline cost: {100 * (pipeline / bare - 1):+.1f} % end to end; "
          f"{100 * ((pipeline - load) / bare - 1):+.1f} % without the one-off model load "
          f"({load:.1f} s) (goal <= 3 %)")
    # CPU seconds of the whole process: what a shared machine's load does not distort
    print(f"CPU time: pipeline {pipeline_cpu:.1f} s, bare {bare_cpu:.1f} s = "
          f"{100 * (pipeline_cpu / bare_cpu - 1):+.1f} %")


def child_memory(folder: Path, size: int) -> None:
    from deepseg_core.stages import predict

    exp, registry, _ = setup(folder, size, "tinyfcn", 1024, 64)
    start = time.perf_counter()
    predict.run(exp, registry)
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["throughput", "memory"])
    parser.add_argument("--size", type=int, default=1536)
    parser.add_argument("--tilesize", type=int, default=256)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 40000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deepseg-bench-predict"))
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        return child_memory(args.workdir, args.size)
    if args.mode == "throughput":
        return throughput(args.workdir, args.size, args.tilesize)
    peaks = {}
    for size in args.sizes:
        r = run_child(__file__, "memory", "--size", str(size), "--workdir", str(args.workdir))
        peaks[size] = r["peak_rss_mib"]
        print(f"{size} x {size} px: {r['seconds']:.0f} s, peak RSS {r['peak_rss_mib']:.0f} MiB")
    small, large = peaks[min(peaks)], peaks[max(peaks)]
    print(f"peak memory ratio largest/smallest = {large / small:.2f} (goal <= 1.15)")


if __name__ == "__main__":
    main()

"""GPU benchmark: inference, end-to-end prediction, Mask R-CNN and training speed on one GPU.

    pip install -e ".[gpu]" -e plugins/deepseg_unet64 -e plugins/deepseg_resunet \
        -e plugins/deepseg_maskrcnn
    python benchmarks/gpu.py [--out gpu-results] [--small] [--budget SECONDS]

or, on JAX (the GPU machines at hand: benchmarks/device/README.md), ``KERAS_BACKEND=jax``.
On a GPU (about 8 minutes): UNet64 and ResUNet at 1024 px, float32 and mixed precision
(TensorFlow: float16; JAX: bfloat16), batch 4-32: bare ``predict`` tiles/s; end-to-end
``deepseg predict`` tiles/s on a generated 20,480 x 20,480 px raster (pipeline cost = bare /
end to end, the time the model waited on the readers, GPU utilisation and memory sampled
with nvidia-smi); Mask R-CNN (resnet50, 1024 px, float32 and mixed bfloat16, on either
backend) prediction including stitching; one training epoch with and without mixed
precision; what that implies for the 59,210-tile tree job (Mask R-CNN's included) on 1 and
16 GPUs, in Gpx/h per GPU beside published peer figures.
Without a GPU (or with --small) the same steps run at tiny sizes, so the script never rots.
Writes ``results.json`` and ``results.md`` to --out after every step (a run stopped by its
time limit leaves what it measured); ``--budget`` skips the steps that no longer fit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: memory as used

import numpy as np  # noqa: E402
from gpu_setup import (  # noqa: E402
    Clock,
    GpuSampler,
    gpu_info,
    instance_experiment,
    precisions,
    semantic_experiment,
    train_store,
)
from gpu_table import markdown  # noqa: E402

import deepseg_core  # noqa: E402, F401  (its TensorFlow defaults apply before TensorFlow starts)

TREE_JOB = {"tiles": 59_210, "width": 146_400, "height": 237_600}
PEERS = {"DeepForest predict_tile, 2 GPUs": 8.0, "Deepness, GTX 1660 Ti": 3.3}  # Gpx/h
SIZES = {
    "full": {"tilesize": 1024, "overlap": 256, "batches": [4, 8, 16, 32], "raster": 20_480,
             "bare_tiles": 96, "e2e_batch": 16, "readers": [8, 1], "mrcnn_raster": 5_376,
             "train_raster": 8_192, "models": {"unet64": {}, "resunet": {}},
             "maskrcnn": {"backbone": "resnet50", "detection_min_confidence": 0.05}},
    "small": {"tilesize": 64, "overlap": 16, "batches": [2, 4], "raster": 256,
              "bare_tiles": 8, "e2e_batch": 4, "readers": [2, 1], "mrcnn_raster": 160,
              "train_raster": 192,
              "models": {"unet64": {"filters": 4, "depth": 2},
                         "resunet": {"filters": 4, "depth": 2}},
              "maskrcnn": {"backbone": "resnet_tiny", "fpn_channels": 16, "head_fc": 32,
                           "mask_channels": 8, "anchor_scales": [8, 16, 32, 64, 128],
                           "pre_nms_limit": 200, "proposals_train": 50,
                           "proposals_infer": 50, "rois_per_image": 16,
                           "detection_min_confidence": 0.05}},
}


def set_precision(policy: str) -> None:
    import keras

    keras.mixed_precision.set_global_policy(policy)


def bare_predict(registry, name, params, size, policy) -> list[dict]:
    """Tiles/s of the model's own predict on tiles already on the host (no reading/writing),
    at each batch size."""
    set_precision(policy)
    plugin = registry.get("model", name)
    model = plugin.build(3, 2, size["tilesize"], params)
    set_precision("float32")
    rows = []
    for batch in size["batches"]:
        tiles = np.random.default_rng(0).normal(
            size=(batch, size["tilesize"], size["tilesize"], 3)).astype("float32")
        plugin.predict_tiles(model, tiles)  # trace and warm up outside the timing
        steps = max(1, size["bare_tiles"] // batch)
        start = time.perf_counter()
        for _ in range(steps):
            plugin.predict_tiles(model, tiles)
        rows.append({"model": name, "precision": policy, "batch": batch,
                     "tiles_per_s": steps * batch / (time.perf_counter() - start)})
    return rows


def predict_run(exp, registry, sampler) -> dict:
    """Tiles/s of ``deepseg predict`` (the predict stage) and what the run printed."""
    from deepseg_core.stages import predict

    for old in exp.outdir.glob("predictions/*"):
        old.unlink()
    said = logging.getLogger("deepseg_core.inference.stream")  # the run's summary line
    lines = logging.Handler()
    lines.emit = lambda record: printed.append(record.getMessage())
    printed = []
    said.addHandler(lines)
    said.setLevel(logging.INFO)
    sampler.start()
    start = time.perf_counter()
    try:
        predict.run(exp, registry)
    finally:
        said.removeHandler(lines)
    seconds = time.perf_counter() - start
    gpu = sampler.stop()
    text = "\n".join(printed)
    line = re.search(r"(\d+) tiles predicted, (\d+) all-nodata.*?([\d.]+) s \(.*?model "
                     r"waited ([\d.]+) s", text)
    tiles, skipped, stream_s, waited = (float(v) for v in line.groups())
    first = re.search(r"the first tiles after ([\d.]+) s", text)
    first_s = float(first.group(1)) if first else 0.0  # the first batch: compiling is in it
    batch = exp.predict.batch_size or exp.training.batch_size
    steady = (tiles + skipped - batch) / max(stream_s - first_s, 1e-9)
    return {"tiles": int(tiles + skipped), "seconds": seconds, "stream_s": stream_s,
            "tiles_per_s": (tiles + skipped) / seconds, "first_batch_s": first_s,
            "steady_tiles_per_s": steady, "model_waited_s": waited, **gpu}


def end_to_end(folder, registry, size, sampler, bare, policies, clock) -> list[dict]:
    rows = []
    for name, params in size["models"].items():
        for policy in policies:
            for readers in size["readers"]:
                if readers != size["readers"][0] and (name, policy) != ("unet64", "float32"):
                    continue  # fewer readers once: what the model waits on one reader
                if not clock.left(f"predict {name} {policy} readers={readers}"):
                    continue
                exp = semantic_experiment(folder, registry, name, params, size, policy,
                                          readers)
                r = predict_run(exp, registry, sampler)
                b = next((x["tiles_per_s"] for x in bare if x["model"] == name
                          and x["precision"] == policy and x["batch"] == size["e2e_batch"]),
                         None)
                rows.append({"model": name, "precision": policy, "readers": readers,
                             "batch": size["e2e_batch"], "bare_tiles_per_s": b,
                             "pipeline_cost": b / r["tiles_per_s"] if b else None,
                             "steady_pipeline_cost": b / r["steady_tiles_per_s"] if b else None,
                             **r})
                print(f"predict {name} {policy} readers={readers}: "
                      f"{r['tiles_per_s']:.2f} tiles/s", flush=True)
    return rows


#: Mask R-CNN's precisions: float32 and bfloat16 on both backends (issue 26)
MASKRCNN_PRECISIONS = ("float32", "mixed_bfloat16")


def vector_libraries_missing() -> str | None:
    """Why the instance route cannot run here (it writes GeoPackage polygons with pyogrio and
    shapely, which the GPU kit does not carry: their wheels would not fit), or None."""
    try:
        import pyogrio  # noqa: F401
        import shapely  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def maskrcnn(folder, registry, size, sampler, policy: str) -> dict:
    """``deepseg predict`` of Mask R-CNN (stitching included) at ``policy``: tiles/s. Without
    the vector libraries: the model's own ``predict_tiles`` (detection, masks, unmolding) on
    tiles on the host, stitching and writing excluded, and said so in the row."""
    missing = vector_libraries_missing()
    if missing:
        row = bare_predict(registry, "maskrcnn", size["maskrcnn"],
                           {**size, "batches": [size["e2e_batch"]]}, policy)[0]
        print(f"predict maskrcnn {policy}: {row['tiles_per_s']:.2f} tiles/s (bare: no "
              f"stitching; {missing})", flush=True)
        return {**row, "backbone": size["maskrcnn"]["backbone"], "readers": 0,
                "stitching": False, "why": missing}
    exp = instance_experiment(folder, registry, size, policy)
    r = predict_run(exp, registry, sampler)
    print(f"predict maskrcnn {policy}: {r['tiles_per_s']:.2f} tiles/s", flush=True)
    return {"model": "maskrcnn", "backbone": size["maskrcnn"]["backbone"], "precision": policy,
            "readers": size["readers"][0], "stitching": True, **r}


def train_epoch(folder, registry, size, policy) -> dict:
    """Tiles/s of one epoch of UNet64 fed from the HDF5 store (after a traced warm-up step)."""
    from deepseg_core.contracts.model import TrainSettings
    from deepseg_core.store import Store
    from deepseg_core.training.dataset import Feed, StoreDataset
    from deepseg_core.training.fit import augmenters

    params = size["models"]["unet64"]
    exp, store_path = train_store(folder / "train", registry, size["train_raster"],
                                  size["tilesize"], params)
    plugin = registry.get("model", "unet64")
    with Store(store_path) as store:
        n = len(store)
    batch = size["e2e_batch"] // 2
    feed = Feed(plugin, batch, ignore_label=exp.ignore_label,
                augmenters=tuple(augmenters(exp, registry)))
    data = StoreDataset(store_path, np.arange(n), feed, shuffle=True)
    set_precision(policy)
    model = plugin.build(3, 2, size["tilesize"], {**exp.model.params, **params})
    plugin.compile(model, TrainSettings(nclasses=2))
    x, y = data[0]
    model.fit(x, y, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    set_precision("float32")
    return {"precision": policy, "tiles": n, "batch": batch, "seconds": seconds,
            "tiles_per_s": n / seconds}


def tree_job(e2e: list[dict], size) -> list[dict]:
    """The 59,210-tile job at each end-to-end rate (full readers), on 1 and 16 GPUs; the
    steady rate (after the first batch, which compiles the model) beside it."""
    gpx = TREE_JOB["width"] * TREE_JOB["height"] / 1e9
    rows = []
    for r in e2e:
        if r["readers"] != size["readers"][0]:
            continue
        one = TREE_JOB["tiles"] / r["tiles_per_s"]
        rows.append({"model": r["model"], "precision": r["precision"],
                     "hours_1_gpu": one / 3600, "minutes_16_gpus": one / 16 / 60,
                     "gpx_per_h_per_gpu": gpx / (one / 3600),
                     "gpx_per_h_per_gpu_steady": gpx * r["steady_tiles_per_s"] * 3600
                     / TREE_JOB["tiles"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-results"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deepseg-bench-gpu"))
    parser.add_argument("--small", action="store_true", help="tiny sizes even on a GPU")
    parser.add_argument("--budget", type=float, help="seconds: skip steps that no longer fit")
    args = parser.parse_args()
    from deepseg_core.plugins import get_registry

    info = gpu_info()
    size = SIZES["small" if args.small or not info["gpus"] else "full"]
    clock = Clock(args.budget, 40.0 if size is SIZES["full"] else 0.0)
    registry, sampler = get_registry(), GpuSampler(info["nvidia_smi"])
    policies = precisions(info["backend"])
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {"mode": "full" if size is SIZES["full"] else "small", **info, "sizes": size,
               "precisions": list(policies), "bare_predict": [], "end_to_end": [],
               "maskrcnn": [], "train": [],
               "tree_job": [], "peers_gpx_per_h": PEERS, "skipped": clock.skipped}

    def save() -> None:
        results["seconds"] = clock.seconds()
        results["tree_job"] = tree_job(results["end_to_end"] + results["maskrcnn"], size)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        (args.out / "results.md").write_text(markdown(results))

    e2e_first = sorted(size["models"].items(), key=lambda m: m[0] != "unet64")
    for name, params in e2e_first:
        for policy in policies:
            if clock.left(f"bare {name} {policy}"):
                results["bare_predict"] += bare_predict(registry, name, params, size, policy)
                save()
    print(f"bare predict done ({clock.seconds():.0f} s)", flush=True)
    results["end_to_end"] = end_to_end(args.workdir, registry, size, sampler,
                                       results["bare_predict"], policies, clock)
    save()
    for policy in MASKRCNN_PRECISIONS:
        if clock.left(f"maskrcnn {policy}"):
            results["maskrcnn"].append(maskrcnn(args.workdir, registry, size, sampler, policy))
            save()
    for policy in policies:
        if clock.left(f"train {policy}"):
            results["train"].append(train_epoch(args.workdir, registry, size, policy))
            save()
    save()
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()

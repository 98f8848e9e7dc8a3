"""Mask R-CNN speed on CPU per Keras backend: training steps/s and inference tiles/s at the
real-trees benchmark's settings (issue 26).

    python benchmarks/maskrcnn.py [--backends tensorflow jax] [--tilesize 256] [--batch 4]
                                  [--steps 5] [--batches 5]

The model is ``real_trees.MASKRCNN`` (tiny ResNet, 3 octave anchors, 300 proposals, 64 ROIs)
on 3-band tiles of synthetic crowns 14-74 px across (tests/crowns.py), batches of 4 as the
benchmark trains. Each backend runs in its own process with DeepSeg's CPU training settings
(TensorFlow's op determinism; JAX as it is). One untimed step first (tracing, compiling),
then ``--steps`` training steps (``train_on_batch``) and ``--batches`` inference batches
(``predict_tiles``: detection, masks and their unmolding to instances). CPU seconds (user +
system of the process) are what a shared machine's load distorts least.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import deepseg_core  # noqa: F401  (its TensorFlow defaults apply before TensorFlow starts)

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "plugins" / "deepseg_maskrcnn" / "tests")]
from common import backend_child  # noqa: E402  (beside this file)


def tiles(n: int, size: int, seed: int):
    """``n`` crown scenes of ``size`` px and 3 bands, crowns 14-74 px across."""
    from crowns import crown_scene

    scenes = [crown_scene(seed + i, size, 3, radii=(7, 37), count=(10, 30)) for i in range(n)]
    return np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])


def child(args: argparse.Namespace) -> dict:
    import keras
    from real_trees import MASKRCNN

    from deepseg_core.contracts.model import TrainSettings
    from deepseg_core.plugins import get_registry
    from deepseg_core.training.distributed import backend_module

    keras.utils.set_random_seed(0)
    backend_module().deterministic(False)
    plugin = get_registry().get("model", "maskrcnn")
    params = {k: v for k, v in MASKRCNN.items() if k != "name"}
    model = plugin.build(3, 2, args.tilesize, params)
    plugin.compile(model, TrainSettings(nclasses=2, learning_rate=1e-3))
    images, labels = tiles(args.batch, args.tilesize, 0)
    ids = [{int(v): 1 for v in np.unique(t) if v} for t in labels]
    x, y = plugin.prepare_batch(images, labels, ids, params)
    model.train_on_batch(x, y)  # trace and compile outside the timing

    def timed(step, n: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            step()
        return time.perf_counter() - wall, time.process_time() - cpu

    wall, cpu = timed(lambda: model.train_on_batch(x, y), args.steps)
    found = plugin.predict_tiles(model, x)
    pwall, pcpu = timed(lambda: plugin.predict_tiles(model, x), args.batches)
    tiles_done = args.batches * args.batch
    return {"backend": keras.backend.backend(), "train_steps_per_s": args.steps / wall,
            "train_cpu_s_per_step": cpu / args.steps,
            "predict_tiles_per_s": tiles_done / pwall,
            "predict_cpu_s_per_tile": pcpu / tiles_done,
            "instances_per_tile": sum(len(r.instances) for r in found) / args.batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--tilesize", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    print("| backend | train steps/s | train CPU s/step | predict tiles/s | predict CPU s/tile |"
          "\n|---|---|---|---|---|")
    for backend in args.backends:
        r = backend_child(__file__, [*sys.argv[1:], "--child"], backend)
        if isinstance(r, str):
            print(f"| {backend} | failed: {r} |")
            continue
        print(f"| {r['backend']} | {r['train_steps_per_s']:.3f} | "
              f"{r['train_cpu_s_per_step']:.2f} | {r['predict_tiles_per_s']:.2f} | "
              f"{r['predict_cpu_s_per_tile']:.3f} |", flush=True)


if __name__ == "__main__":
    main()

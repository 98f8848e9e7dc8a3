"""XLA (``jit_compile``) on and off, per Keras backend: CPU seconds per tile of UNet64 training
steps and predictions.

    python benchmarks/jit.py [--backends tensorflow jax] [--filters 32] [--depth 3]
                             [--tilesize 128] [--batch 8] [--steps 6]

Each (backend, jit_compile) runs in its own process with DeepSeg's settings for training on
CPU: TensorFlow's op determinism unless XLA is on (training.jit_compile: true turns it off;
Keras refuses XLA under it), JAX as it is. A warm-up step (tracing, compiling) is not timed;
CPU seconds (user + system of the process) are what a shared machine's load distorts least.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from common import backend_child

import deepseg_core  # noqa: F401  (its TensorFlow defaults apply before TensorFlow starts)


def child(args: argparse.Namespace) -> dict:
    import keras

    from deepseg_core.backend import set_jit
    from deepseg_core.contracts.model import TrainSettings
    from deepseg_core.plugins import get_registry
    from deepseg_core.training.distributed import backend_module

    jit = {"true": True, "false": False}[args.jit]
    keras.utils.set_random_seed(0)
    backend_module().deterministic(jit)
    plugin = get_registry().get("model", "unet64")
    params = {"filters": args.filters, "depth": args.depth}
    model = plugin.build(3, 2, args.tilesize, params)
    plugin.compile(model, TrainSettings(nclasses=2))
    set_jit(model, jit)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, args.tilesize, args.tilesize, 3)).astype("float32")
    y = rng.integers(0, 2, (args.batch, args.tilesize, args.tilesize)).astype("int32")
    model.train_on_batch(x, y)  # trace and compile outside the timing

    def timed(step, n: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            step()
        tiles = n * args.batch
        return (time.process_time() - cpu) / tiles, tiles / (time.perf_counter() - wall)

    train_cpu, train_rate = timed(lambda: model.train_on_batch(x, y), args.steps)
    model.predict_on_batch(x)
    predict_cpu, predict_rate = timed(lambda: model.predict_on_batch(x), 2 * args.steps)
    return {"backend": keras.backend.backend(), "jit_compile": model.jit_compile,
            "train_cpu_s_per_tile": train_cpu, "train_tiles_per_s": train_rate,
            "predict_cpu_s_per_tile": predict_cpu, "predict_tiles_per_s": predict_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--tilesize", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--jit", choices=["true", "false"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jit:
        print(json.dumps(child(args)))
        return
    print("| backend | jit_compile | train CPU s/tile | train tiles/s | predict CPU s/tile | "
          "predict tiles/s |\n|---|---|---|---|---|---|")
    for backend in args.backends:
        for jit in ("false", "true"):
            r = backend_child(__file__, [*sys.argv[1:], "--jit", jit], backend)
            if isinstance(r, str):
                print(f"| {backend} | {jit} | failed: {r} |")
                continue
            print(f"| {r['backend']} | {r['jit_compile']} | {r['train_cpu_s_per_tile']:.3f} | "
                  f"{r['train_tiles_per_s']:.2f} | {r['predict_cpu_s_per_tile']:.4f} | "
                  f"{r['predict_tiles_per_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()

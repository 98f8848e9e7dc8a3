"""Benchmark: train a small Mask R-CNN from scratch on synthetic crowns, report instance F1.

Run: ``.venv/bin/python plugins/deepseg_maskrcnn/benchmarks_crowns.py [--steps N]
[--params '{"anchor_octaves": 3}'] ...``
(CPU is fine). The scene generator and the greedy IoU matching live in ``tests/crowns.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

import numpy as np  # noqa: E402
from crowns import CROWN_PARAMS, crown_tiles, f1_score, instance_f1  # noqa: E402

from deepseg_core.builtin.augment import dihedral  # noqa: E402
from deepseg_core.contracts.model import TrainSettings  # noqa: E402


def batches(plugin, images, labels, batch_size: int, seed: int, params=CROWN_PARAMS):
    """Endless prepared batches of randomly flipped/rotated tiles."""
    rng = np.random.default_rng(seed)
    while True:
        chosen = rng.choice(len(images), batch_size, replace=False)
        ks = rng.integers(8, size=batch_size)
        x = np.stack([dihedral(images[i], k) for i, k in zip(chosen, ks)])
        y = np.stack([dihedral(labels[i], k) for i, k in zip(chosen, ks)])
        yield plugin.prepare_batch(x, y, None, params)


def train(plugin, model, images, labels, steps: int, batch_size: int = 4, seed: int = 0,
          log_every: int = 0, params=CROWN_PARAMS) -> list[float]:
    """``steps`` optimizer steps on augmented batches; the total loss of each step."""
    history = []
    for step, (x, y) in enumerate(batches(plugin, images, labels, batch_size, seed, params)):
        if step == steps:
            break
        logs = model.train_on_batch(x, y, return_dict=True)
        history.append(float(logs["loss"]))
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}: " + " ".join(f"{k}={v:.3f}" for k, v in logs.items()),
                  flush=True)
    return history


def evaluate(plugin, model, images, labels, batch_size: int = 4):
    """Instance (tp, fp, fn) over held-out tiles."""
    counts = np.zeros(3, int)
    for start in range(0, len(images), batch_size):
        results = plugin.predict_tiles(model, images[start:start + batch_size])
        for result, truth in zip(results, labels[start:start + batch_size]):
            counts += instance_f1(result.instances, truth)
    return tuple(int(c) for c in counts)


def main(argv=None):
    """Train, then report F1 at IoU 0.5 on held-out scenes and the time taken."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--tiles", type=int, default=32)
    parser.add_argument("--test-tiles", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", type=json.loads, default={},
                        help="model parameters (JSON) over the benchmark's CROWN_PARAMS")
    args = parser.parse_args(argv)
    params = {**CROWN_PARAMS, **args.params}

    import keras
    from deepseg_maskrcnn.plugin import MaskRCNNPlugin

    keras.utils.set_random_seed(args.seed)
    images, labels = crown_tiles(args.tiles, seed=1)
    test_images, test_labels = crown_tiles(args.test_tiles, seed=2)
    plugin = MaskRCNNPlugin()
    model = plugin.build(4, 2, 128, params)
    plugin.compile(model, TrainSettings(nclasses=2, learning_rate=args.lr))
    start = time.perf_counter()
    losses = train(plugin, model, images, labels, args.steps, args.batch_size, args.seed, 50,
                   params)
    trained = time.perf_counter() - start
    tp, fp, fn = evaluate(plugin, model, test_images, test_labels)
    print(f"loss {np.mean(losses[:20]):.3f} -> {np.mean(losses[-20:]):.3f}; "
          f"{args.steps} steps in {trained:.0f} s; held-out tp={tp} fp={fp} fn={fn} "
          f"F1@0.5={f1_score(tp, fp, fn):.3f}")


if __name__ == "__main__":
    main()

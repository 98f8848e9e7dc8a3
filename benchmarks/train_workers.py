"""Training throughput of two multi-worker CPU processes (TF_CONFIG, loopback) beside one,
and what ``training.workers`` loader processes add to the distributed input (issue 27).

    python benchmarks/train_workers.py [--size 384] [--epochs 1 4] [--loaders 0 1 2]

Builds a store of a squares scene (64 px tiles), then trains a UNet64 (8 filters, depth 2)
with the same global batch (8) as one process (all cores) and as two workers of
MultiWorkerMirroredStrategy (batch_size 4 each, one thread each), the latter once without
loader processes and once with ``training.workers: 1`` each. Each setting runs for the
two epoch counts; the difference of the wall times over the difference of the epochs is the
time of an epoch without start-up, from which the training tiles per second follow; the same
for the CPU seconds of all the processes (workers and their loaders).

Feeding alone (no model): one worker's share of 64 global batches of 8 (half of each) of a
second store, ``--feed-tilesize`` px tiles (256) of a 1024 px scene, with flips and
rotations and radiometric jitter, made by 0 (in the calling thread), 1 or 2 loader processes
(``--loaders``) in the order backend_tf's input stream asks for them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support


def experiment(folder: Path, size: int, name: str, tilesize: int = 64, **training) -> Path:
    from tests.support.synthetic import squares_scene, write_experiment

    img, gpkg = folder / "scene.tif", folder / "scene.gpkg"
    if not img.exists():
        squares_scene(folder, size=size, nsquares=size // 8)
    extra = {"augmentation": [{"name": "flips"}, {"name": "jitter", "brightness": 0.1}]} \
        if tilesize != 64 else {}
    return write_experiment(folder, img, gpkg, name=name, tilesize=tilesize, overlap=0, folds=2,
                            model={"name": "unet64", "filters": 8, "depth": 2},
                            training={"seed": 1, **training}, **extra)


def set_epochs(path: Path, epochs: int) -> None:
    import yaml

    settings = yaml.safe_load(path.read_text())
    settings["epochs"] = epochs
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


def deepseg() -> list[str]:
    script = Path(sys.executable).with_name("deepseg")
    return [str(script)] if script.exists() else [sys.executable, "-m", "deepseg_core.cli"]


def timed(path: Path, workers: int) -> tuple[float, str]:
    """Wall seconds of 'deepseg train' as one process or as ``workers`` TF_CONFIG workers."""
    base = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if workers == 1:
        envs = [base]
    else:
        socks = [socket.socket() for _ in range(workers)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        hosts = [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
        for s in socks:
            s.close()
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        envs = [{**base, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1",
                 "OMP_NUM_THREADS": threads, "TF_CONFIG": json.dumps(
                     {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})}
                for i in range(workers)]
    start = time.perf_counter()
    procs = [subprocess.Popen([*deepseg(), "train", str(path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for env in envs]
    outs = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            sys.exit(f"deepseg train failed:\n{out[-3000:]}")
        outs.append(out)
    return time.perf_counter() - start, outs[0]


def feed_rate(path: Path, loaders: int, batches: int = 64) -> float:
    """Batches per second of worker 0's share (part 0 of 2) through ``loaders`` processes."""
    import dataclasses

    import numpy as np

    from deepseg_core.config import load_experiment
    from deepseg_core.plugins import get_registry
    from deepseg_core.store.identity import open_store
    from deepseg_core.training.dataset import Feed, StoreDataset
    from deepseg_core.training.fit import augmenters

    exp, registry = load_experiment(path), get_registry()
    with open_store(exp) as store:
        tiles, where = np.arange(len(store)), store.path
    feed = Feed(registry.get("model", exp.model.name), 8, exp.model.params, exp.ignore_label)
    feed = dataclasses.replace(feed, augmenters=tuple(augmenters(exp, registry)), seed=1)
    data = StoreDataset(where, tiles, feed, shuffle=True, workers=loaders)
    keys = [(e, s % data.steps, 0, 2) for e, s in enumerate(range(batches))]
    try:
        loader = data.loader()
        start = time.perf_counter()
        for _ in loader.batches(keys):
            pass
        return batches / (time.perf_counter() - start)
    finally:
        data.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--epochs", type=int, nargs=2, default=[1, 4])
    parser.add_argument("--loaders", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--feed-tilesize", type=int, default=256)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deepseg-bench-workers"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    from deepseg_core.config import load_experiment
    from deepseg_core.plugins import get_registry
    from deepseg_core.stages import dataprep

    one = experiment(args.workdir, args.size, "one", batch_size=8)
    two = experiment(args.workdir, args.size, "two", batch_size=4, distribute="multiworker")
    fed = experiment(args.workdir, args.size, "fed", batch_size=4, distribute="multiworker",
                     workers=1)
    dataprep.run(load_experiment(one), get_registry())
    fast = experiment(args.workdir / "feed", 1024, "feed", args.feed_tilesize, batch_size=4,
                      distribute="multiworker")
    dataprep.run(load_experiment(fast), get_registry())
    for loaders in args.loaders:
        print(f"feeding {args.feed_tilesize} px tiles, {loaders} loader process(es): "
              f"{feed_rate(fast, loaders):.1f} batches/s (one worker's half of a global batch "
              "of 8)", flush=True)
    first, last = args.epochs
    for name, path, workers in (("1 process", one, 1), ("2 workers", two, 2),
                                ("2 workers, 1 loader process each", fed, 2)):
        walls, cpus = [], []
        for epochs in (first, last):
            set_epochs(path, epochs)
            cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, out = timed(path, workers)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # loader processes included
            walls.append(wall)
            cpus.append(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime)
        ntrain = int(re.search(r"training \S+ on (\d+) tiles", out).group(1))
        print(next(line for line in out.splitlines() if "global batch" in line))
        epoch = (walls[1] - walls[0]) / (last - first)
        cpu_epoch = (cpus[1] - cpus[0]) / (last - first)
        print(f"{name}: {walls[0]:.1f} s for {first} epoch(s), {walls[1]:.1f} s for {last}: "
              f"{epoch:.2f} s per epoch, {ntrain / epoch:.1f} training tiles/s; CPU (all "
              f"processes) {cpus[0]:.1f} and {cpus[1]:.1f} s: {cpu_epoch:.2f} CPU s per epoch")


if __name__ == "__main__":
    main()

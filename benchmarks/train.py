"""Training throughput fed from the HDF5 store versus from in-memory numpy arrays.

    python benchmarks/train.py [--size 1024] [--tilesize 256] [--filters 64] [--epochs 2]

Builds a store of a synthetic 3-band scene, then trains the full-size UNet64 (64 filters,
depth 4) for the same steps twice: batches from the store's PyDataset (read, normalize,
augment), and batches from arrays already in memory. Goal: the store costs at most 10 %.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml
from common import TRANSFORM, synthetic_raster


def build_store(folder: Path, size: int, tilesize: int, filters: int):
    import geopandas as gpd
    from shapely.geometry import Point

    from deepseg_core.config import load_experiment
    from deepseg_core.plugins.manager import get_registry
    from deepseg_core.stages import dataprep

    image = synthetic_raster(folder / f"synthetic_{size}.tif", size)
    rng = np.random.default_rng(2)
    x0, y1 = TRANSFORM @ (0, 0)
    x1, y0 = TRANSFORM @ (size, size)
    crowns = [Point(x, y).buffer(r) for x, y, r in zip(rng.uniform(x0, x1, 400),
                                                       rng.uniform(y0, y1, 400),
                                                       rng.uniform(2, 8, 400))]
    labels = folder / "crowns.gpkg"
    gpd.GeoDataFrame({"class": ["tree"] * len(crowns)}, geometry=crowns,
                     crs="EPSG:2193").to_file(labels, driver="GPKG")
    path = folder / "train_bench.yaml"
    path.write_text(yaml.safe_dump({
        "name": "train_bench", "workdir": str(folder), "tilesize": tilesize, "overlap": 0,
        "nbands": 3, "images": [str(image)], "labels": {"path": str(labels),
                                                         "class_field": "class"},
        "classes": [{"name": "background"}, {"name": "tree", "value": "tree"}],
        "model": {"name": "unet64", "filters": filters, "depth": 4},
        "training": {"batch_size": 4}}))
    exp = load_experiment(path)
    registry = get_registry()
    return exp, registry, dataprep.run(exp, registry)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--tilesize", type=int, default=256)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deepseg-bench-train"))
    args = parser.parse_args()
    exp, registry, store_path = build_store(args.workdir, args.size, args.tilesize,
                                            args.filters)
    from deepseg_core.contracts.model import TrainSettings
    from deepseg_core.store import Store
    from deepseg_core.training.dataset import Feed, StoreDataset
    from deepseg_core.training.fit import augmenters

    plugin = registry.get("model", "unet64")
    with Store(store_path) as store:
        n = len(store)
    feed = Feed(plugin, 4, ignore_label=exp.ignore_label,
                augmenters=tuple(augmenters(exp, registry)))
    dataset = StoreDataset(store_path, np.arange(n), feed, shuffle=True)
    x = np.concatenate([dataset[i][0] for i in range(len(dataset))])
    y = np.concatenate([dataset[i][1] for i in range(len(dataset))])
    results = {}
    for feed in ("memory", "store", "memory", "store"):  # alternate: fair against drift
        model = plugin.build(3, 2, args.tilesize, exp.model.params)
        plugin.compile(model, TrainSettings(nclasses=2))
        model.fit(x[:4], y[:4], epochs=1, verbose=0)  # build and trace outside the timing
        start = time.perf_counter()
        if feed == "store":
            model.fit(dataset, epochs=args.epochs, verbose=0)
        else:
            model.fit(x, y, batch_size=4, epochs=args.epochs, shuffle=True, verbose=0)
        results.setdefault(feed, []).append(n * args.epochs / (time.perf_counter() - start))
    memory, stored = max(results["memory"]), max(results["store"])
    print(f"UNet64 (filters {args.filters}) on {n} tiles of {args.tilesize} px, "
          f"{args.epochs} epochs, batch 4")
    print(f"in-memory arrays: {memory:.2f} tiles/s; HDF5 store: {stored:.2f} tiles/s")
    print(f"store feeding cost: {100 * (1 - stored / memory):+.1f} % (goal <= 10 %)")


if __name__ == "__main__":
    main()

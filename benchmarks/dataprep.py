"""Dataprep throughput and peak memory against a bare rasterio-read / h5py-write baseline.

    python benchmarks/dataprep.py [--size 20000] [--workdir /tmp/deepseg-bench]

Writes a synthetic 3-band uint8 GeoTIFF (size x size px) and a label GeoPackage, then runs,
each in its own process so peak memory is measured alone: (1) the baseline, which reads the
same 1024 px windows (256 overlap) with rasterio and writes them to one HDF5 dataset with
the store's chunking and compression; (2) `deepseg dataprep`. Goal: dataprep at least 0.7x the
baseline's tiles/s, peak memory independent of raster size (compare two --size values).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
from common import TRANSFORM, run_child, synthetic_raster

TILE, OVERLAP = 1024, 256


def make_inputs(folder: Path, size: int) -> tuple[Path, Path]:
    """A textured synthetic raster written block by block, and one label polygon layer."""
    import geopandas as gpd
    from shapely.geometry import Point, box

    folder.mkdir(parents=True, exist_ok=True)
    image = synthetic_raster(folder / f"synthetic_{size}.tif", size)
    transform = TRANSFORM
    labels = folder / f"labels_{size}.gpkg"
    if not labels.exists():
        x0, y1 = transform @ (0, 0)
        x1, y0 = transform @ (size, size)
        rng = np.random.default_rng(1)
        shapes = [box(x0, y0, x1, y1)] + [Point(x, y).buffer(r) for x, y, r in zip(
            rng.uniform(x0, x1, 2000), rng.uniform(y0, y1, 2000), rng.uniform(2, 10, 2000))]
        frame = gpd.GeoDataFrame({"class": ["ground"] + ["tree"] * 2000}, geometry=shapes,
                                 crs="EPSG:2193")
        frame.to_file(labels, driver="GPKG")
    return image, labels


def baseline(image: Path, out: Path) -> dict:
    """Read every grid window with rasterio and write it with h5py: the floor to compare to."""
    import h5py
    import rasterio
    from rasterio.windows import Window

    from deepseg_core.builtin.tiler import grid_tiles

    start = time.perf_counter()
    with rasterio.open(image) as src, h5py.File(out, "w") as h5:
        windows = grid_tiles(src.width, src.height, TILE, OVERLAP)
        ds = h5.create_dataset("images", (len(windows), TILE, TILE, 3), dtype="uint8",
                               chunks=(1, TILE, TILE, 3), compression="gzip", shuffle=True)
        for i, w in enumerate(windows):
            data = src.read(window=Window(w.col_off, w.row_off, w.width, w.height),
                            boundless=True, fill_value=0)
            ds[i] = np.moveaxis(data, 0, -1)
    return {"tiles": len(windows), "seconds": time.perf_counter() - start}


def deepseg(image: Path, labels: Path, folder: Path) -> dict:
    """`deepseg dataprep` on the same raster."""
    import yaml

    from deepseg_core.config import load_experiment
    from deepseg_core.plugins.manager import get_registry
    from deepseg_core.stages import dataprep
    from deepseg_core.store import Store

    exp_path = folder / f"bench_{image.stem}.yaml"
    exp_path.write_text(yaml.safe_dump({
        "name": f"bench_{image.stem}", "workdir": str(folder), "tilesize": TILE,
        "overlap": OVERLAP, "nbands": 3, "images": [str(image)],
        "labels": {"path": str(labels), "class_field": "class"},
        "classes": [{"name": "ground"}, {"name": "tree"}], "model": "unet64",
        "store": {"path": str(folder / f"store_{image.stem}.h5")}}))
    exp = load_experiment(exp_path)
    Path(exp.store.path).unlink(missing_ok=True)
    start = time.perf_counter()
    path = dataprep.run(exp, get_registry())
    seconds = time.perf_counter() - start
    with Store(path) as store:
        return {"tiles": len(store), "seconds": seconds}


def child(kind: str, size: int, folder: Path) -> None:
    image, labels = make_inputs(folder, size)
    result = baseline(image, folder / "baseline.h5") if kind == "baseline" else \
        deepseg(image, labels, folder)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deepseg-bench"))
    parser.add_argument("--child", choices=["baseline", "deepseg"])
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.size, args.workdir)
    make_inputs(args.workdir, args.size)
    results = {}
    for kind in ("baseline", "deepseg"):
        results[kind] = run_child(__file__, kind, "--size", str(args.size), "--workdir",
                                  str(args.workdir))
    for kind, r in results.items():
        print(f"{kind:9s} {r['tiles']} tiles in {r['seconds']:.1f} s = "
              f"{r['tiles'] / r['seconds']:.2f} tiles/s, peak RSS {r['peak_rss_mib']:.0f} MiB")
    ratio = (results["deepseg"]["tiles"] / results["deepseg"]["seconds"]) / \
        (results["baseline"]["tiles"] / results["baseline"]["seconds"])
    print(f"dataprep speed / baseline speed = {ratio:.2f} (goal >= 0.7)")


if __name__ == "__main__":
    main()

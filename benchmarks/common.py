"""Helpers shared by the benchmarks: synthetic rasters and child-process measurements."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from affine import Affine

TRANSFORM = Affine(0.5, 0, 1_750_000, 0, -0.5, 5_900_000)


def synthetic_raster(path: Path, size: int, bands: int = 3) -> Path:
    """A textured uint8 GeoTIFF of ``size`` x ``size`` px, written in strips (never whole)."""
    import rasterio

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=size, height=size, count=bands, dtype="uint8",
                   crs="EPSG:2193", transform=TRANSFORM, tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate", BIGTIFF="IF_SAFER",
                   NUM_THREADS="ALL_CPUS")  # deflate on every core: 20,480 px in seconds
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, size, 1024):
            h = min(1024, size - r)
            rows = np.arange(r, r + h)[:, None] % 251
            base = (rows + np.arange(size)[None, :] % 241).astype(np.uint8)
            noise = rng.integers(0, 24, (bands, h, size), dtype=np.uint8)
            dst.write(base[None] // 2 + noise, window=((r, r + h), (0, size)))
    return path


def run_child(script: str, *args: str) -> dict:
    """Run ``script --child ...`` in a fresh process; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, script, "--child", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def backend_child(script: str, args: list[str], backend: str) -> dict | str:
    """Run ``script ARGS`` in a fresh process on Keras ``backend``: the JSON of its last stdout
    line, or the last line of its error output when it failed."""
    import os

    done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": backend})
    if done.returncode:
        return (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])

"""A tiny experiment for the cluster tests: unet64 with 2 filters, CPU-only Slurm resources."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import rasterio

from tests.support.synthetic import squares_scene, write_experiment

#: resources a 2-core test machine grants at once to 2 jobs
HPC = {"gpus": None, "mem": "1G", "cpus_per_task": 1, "train_time": "00:10:00",
       "predict_time": "00:10:00", "merge_time": "00:05:00", "shards": 3}


def tiny_experiment(folder: Path, size: int = 96, **overrides) -> Path:
    """A squares scene and its experiment.yaml: 32 px tiles, a 2-filter unet64, 1 epoch."""
    img, gpkg, _ = squares_scene(folder, size=size)
    settings = {"epochs": 1, "model": {"name": "unet64", "filters": 2, "depth": 1},
                "training": {"batch_size": 8, "seed": 1}, "hpc": HPC}
    settings.update(overrides)
    return write_experiment(folder, img, gpkg, **settings)


def band(path: Path) -> np.ndarray:
    """Band 1 of a raster."""
    with rasterio.open(path) as src:
        return src.read(1)


def bash(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run a job script with bash, without Slurm (no SLURM_* variables)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          env={**environ, **env}, timeout=600)

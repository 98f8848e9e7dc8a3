"""A tiny experiment for the cluster tests: unet64 with 2 filters, CPU-only Slurm resources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
from scenes import squares_scene, write_experiment

from deepseg_core.data.bandstats import BandStats
from deepseg_core.models.folder import model_info

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


def untrained_model(exp, registry) -> None:
    """Save an untrained model and its model.json as the train stage would (no fitting)."""
    import keras

    keras.utils.set_random_seed(0)
    with rasterio.open(exp.images[0].path) as src:
        data, crs, res = src.read(), src.crs.to_wkt(), src.res[0]
    stats = BandStats(data.shape[0])
    stats.update(data, None)
    model = registry.get("model", exp.model.name).build(exp.nbands, len(exp.classes),
                                                        exp.tilesize, exp.model.params)
    model_dir = exp.outdir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / "best.keras")
    model_info(exp, stats.as_dict(), [], crs, res).write(model_dir / "model.json")


def band(path: Path) -> np.ndarray:
    """Band 1 of a raster."""
    with rasterio.open(path) as src:
        return src.read(1)


def deepseg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed ``deepseg`` command in a fresh process."""
    script = Path(sys.executable).with_name("deepseg")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "deepseg_core.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)


def bash(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run a job script with bash, without Slurm (no SLURM_* variables)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          env={**environ, **env}, timeout=600)

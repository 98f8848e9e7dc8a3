"""gpu.py's helpers: the GPUs the Keras backend sees, nvidia-smi sampling, benchmark
experiments and the training store (labels as a raster: no vector libraries needed)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import yaml
from common import synthetic_raster

STATS = {"count": [1] * 3, "mean": [100.0] * 3, "std": [50.0] * 3, "min": [0] * 3,
         "max": [255] * 3}  # a fixed normalization: only speed is measured


def gpu_info() -> dict:
    """The backend, its version and the GPUs it sees (TensorFlow: memory growth on, so
    nvidia-smi shows what is used; JAX: XLA_PYTHON_CLIENT_PREALLOCATE=false, set by gpu.py)."""
    import keras

    from deepseg_core.backend import current, version

    name = current()
    info = {"backend": name, "backend_version": version(name), "keras": keras.__version__,
            "tensorflow": version("tensorflow") if name == "tensorflow" else None,
            "nvidia_smi": shutil.which("nvidia-smi")}
    if name == "jax":
        import jax

        devices = jax.devices()
        return {**info, "gpus": [d.device_kind for d in devices if d.platform != "cpu"],
                "devices": [str(d) for d in devices], "jax_platform": jax.default_backend()}
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
             for g in gpus]
    return {**info, "gpus": names, "built_with_cuda": tf.test.is_built_with_cuda()}


def precisions(backend: str) -> tuple[str, ...]:
    """float32 and the half precision the backend trains in on a GPU (JAX: bfloat16, which
    the A100 and H100 run natively and which needs no loss scaling)."""
    return ("float32", "mixed_bfloat16" if backend == "jax" else "mixed_float16")


class GpuSampler:
    """nvidia-smi's utilisation and memory every 200 ms, in a thread, between start and stop."""

    def __init__(self, nvidia_smi: str | None):
        self.exe, self._proc, self._thread, self._rows = nvidia_smi, None, None, []

    def start(self) -> None:
        self._rows = []
        if not self.exe:
            return
        self._proc = subprocess.Popen(
            [self.exe, "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,"
             "nounits", "-lms", "200", "-i", "0"], stdout=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        for line in self._proc.stdout:
            try:
                util, mem = (float(v) for v in line.split(","))
            except ValueError:
                continue
            self._rows.append((util, mem))

    def stop(self) -> dict:
        if self._proc is None:
            return {"gpu_util_mean": None, "gpu_util_max": None, "gpu_mem_max_mib": None}
        self._proc.terminate()
        self._proc.wait()
        self._thread.join()
        self._proc = None
        rows = self._rows or [(float("nan"), float("nan"))]
        util = [r[0] for r in rows]
        return {"gpu_util_mean": sum(util) / len(util), "gpu_util_max": max(util),
                "gpu_mem_max_mib": max(r[1] for r in rows), "gpu_samples": len(self._rows)}


class Clock:
    """The run's time budget: a step starts only while its share is left (None: no limit)."""

    def __init__(self, budget: float | None, need: float):
        self.start, self.budget, self.need, self.skipped = time.perf_counter(), budget, need, []

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def left(self, step: str) -> bool:
        if self.budget is None or self.seconds() + self.need <= self.budget:
            return True
        self.skipped.append(step)
        print(f"skipped (budget): {step}", flush=True)
        return False


def _experiment(folder, registry, name: str, raster_px: int, settings: dict, policy: str):
    """Raster, experiment and an untrained model saved as the train stage would."""
    import keras

    from deepseg_core.config import load_experiment
    from deepseg_core.models.folder import model_info

    image = synthetic_raster(folder / f"synthetic_{raster_px}.tif", raster_px)
    labels = folder / "none.gpkg"
    labels.write_text("")
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "workdir": str(folder), "nbands": 3,
                                    "images": [str(image)], "labels": {"path": str(labels)},
                                    **settings}))
    exp = load_experiment(path)
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        net = registry.get("model", exp.model.name).build(3, len(exp.classes), exp.tilesize,
                                                          exp.model.params)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    (exp.outdir / "model").mkdir(parents=True, exist_ok=True)
    net.save(exp.outdir / "model" / "best.keras")
    model_info(exp, STATS, [], None, 0.5).write(exp.outdir / "model" / "model.json")
    return exp


def semantic_experiment(folder, registry, model: str, params: dict, size: dict, policy: str,
                        readers: int):
    return _experiment(folder, registry, f"{model}_{policy}_r{readers}", size["raster"], {
        "tilesize": size["tilesize"], "overlap": size["overlap"],
        "classes": [{"name": "a"}, {"name": "b"}], "model": {"name": model, **params},
        "predict": {"batch_size": size["e2e_batch"], "readers": readers}}, policy)


def instance_experiment(folder, registry, size: dict, policy: str = "float32"):
    return _experiment(folder, registry, f"maskrcnn_{policy}", size["mrcnn_raster"], {
        "segmentation_type": "instance", "tilesize": size["tilesize"],
        "overlap": size["overlap"], "classes": [{"name": "background"}, {"name": "tree"}],
        "model": {"name": "maskrcnn", **size["maskrcnn"]},
        "predict": {"batch_size": 2, "readers": size["readers"][0], "score_threshold": 0.05}},
        policy)


def train_store(folder, registry, size: int, tilesize: int, params: dict):
    """(experiment, store path) of a synthetic scene with round "crowns" as a label raster."""
    import numpy as np
    import rasterio

    from deepseg_core.config import load_experiment
    from deepseg_core.stages import dataprep

    image = synthetic_raster(folder / f"synthetic_{size}.tif", size)
    labels = folder / f"crowns_{size}.tif"
    if not labels.exists():
        rng = np.random.default_rng(2)
        rows, cols = np.ogrid[:size, :size]
        mask = np.zeros((size, size), np.uint8)
        for r, c, radius in zip(rng.integers(0, size, 400), rng.integers(0, size, 400),
                                rng.integers(4, 16, 400)):
            r0, r1, c0, c1 = max(r - radius, 0), r + radius, max(c - radius, 0), c + radius
            disc = (rows[r0:r1] - r) ** 2 + (cols[:, c0:c1] - c) ** 2 <= radius ** 2
            mask[r0:r1, c0:c1] |= disc
        with rasterio.open(image) as src:
            profile = {**src.profile, "count": 1, "nodata": None}
        with rasterio.open(labels, "w", **profile) as dst:
            dst.write(mask[None])
    path = folder / "train_bench.yaml"
    path.write_text(yaml.safe_dump({
        "name": "train_bench", "workdir": str(folder), "tilesize": tilesize, "overlap": 0,
        "nbands": 3, "images": [str(image)], "labels": {"raster": str(labels)},
        "classes": [{"name": "background"}, {"name": "tree"}],
        "model": {"name": "unet64", **params}, "training": {"batch_size": 4}}))
    exp = load_experiment(path)
    return exp, dataprep.run(exp, registry)

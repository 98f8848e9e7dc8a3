"""gpu.py's helpers: which GPUs TensorFlow sees, nvidia-smi sampling, benchmark experiments."""

from __future__ import annotations

import shutil
import subprocess
import threading

import yaml
from common import synthetic_raster

STATS = {"count": [1] * 3, "mean": [100.0] * 3, "std": [50.0] * 3, "min": [0] * 3,
         "max": [255] * 3}  # a fixed normalization: only speed is measured


def gpu_info() -> dict:
    """The GPUs TensorFlow sees (memory growth on, so nvidia-smi shows what is used)."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
             for g in gpus]
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "gpus": names,
            "built_with_cuda": tf.test.is_built_with_cuda(),
            "nvidia_smi": shutil.which("nvidia-smi")}


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


def instance_experiment(folder, registry, size: dict):
    return _experiment(folder, registry, "maskrcnn", size["mrcnn_raster"], {
        "segmentation_type": "instance", "tilesize": size["tilesize"],
        "overlap": size["overlap"], "classes": [{"name": "background"}, {"name": "tree"}],
        "model": {"name": "maskrcnn", **size["maskrcnn"]},
        "predict": {"batch_size": 2, "readers": size["readers"][0], "score_threshold": 0.05}},
        "float32")

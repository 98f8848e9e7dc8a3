"""Checks every semantic model plugin should pass, for the plugins' own test suites.

A plugin's tests call these with its plugin object and tiny parameters (as timm tests every
model): forward pass, mixed precision, save/load, registration, lazy import, parameter
validation, and learning a simple two-class pattern. Keras is imported inside the checks.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..contracts.model import ModelPlugin, Params, TrainSettings
from ..errors import DeepSegError
from ..models.folder import load_saved


def squares(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bright squares (class 1) on dark noise (class 0): 3-band images and their labels."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.3, (n, size, size, 3)).astype("float32")
    labels = np.zeros((n, size, size), "int32")
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            side = rng.integers(6, 14)
            r, c = rng.integers(0, size - side, 2)
            labels[i, r:r + side, c:c + side] = 1
    images[labels == 1] += 1.5
    return images, labels


def check_forward(plugin: ModelPlugin, params: Params, sizes: Sequence[int] = (32, 48)) -> None:
    """Probabilities of the right shape, summing to 1, on any tile size the model takes."""
    model = plugin.build(5, 3, sizes[0], params)
    for size in sizes:
        probs = np.asarray(model(np.random.rand(2, size, size, 5).astype("float32")))
        assert probs.shape == (2, size, size, 3), probs.shape
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


def check_mixed_precision(plugin: ModelPlugin, params: Params,
                          logits_layer: str = "logits") -> None:
    """float16 compute inside, float32 probabilities out."""
    import keras

    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = plugin.build(3, 2, 32, params)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.get_layer(logits_layer).compute_dtype == "float16"
    assert model.output.dtype == "float32"


def check_save_load(plugin: ModelPlugin, params: Params, folder: Path) -> None:
    """After a training step, a saved and reloaded model predicts bit for bit the same."""
    model = plugin.build(4, 3, 32, params)
    plugin.compile(model, TrainSettings(nclasses=3))
    images = np.random.default_rng(1).random((2, 32, 32, 4), dtype="float32")
    model.train_on_batch(images, np.ones((2, 32, 32), "int32"))  # moves weights, BN, optimizer
    model.save(folder / "m.keras")
    loaded = load_saved(plugin, folder / "m.keras")  # the way predict and resume load it
    np.testing.assert_array_equal(loaded.predict_on_batch(images), model.predict_on_batch(images))


def check_registered(name: str, cls: type) -> None:
    """The entry point registers exactly this model under ``name``."""
    from ..plugins.manager import load_plugins

    plugins = load_plugins()
    model = plugins.registry.get("model", name)
    assert isinstance(model, cls) and model.segmentation_type == "semantic"
    assert plugins.registry.provided_by(name) == {"model": [name]}


def check_lazy_import(module: str) -> None:
    """Importing the plugin module loads neither Keras nor TensorFlow."""
    code = (f"import sys, {module}; "
            "assert not {'keras', 'tensorflow'} & set(sys.modules), 'keras imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def check_rejects(plugin: ModelPlugin, params: Params, nclasses: int, tilesize: int = 64) -> str:
    """The DeepSegError message ``plugin`` gives for bad settings (fails if none)."""
    try:
        plugin.validate(3, nclasses, tilesize, params)
    except DeepSegError as exc:
        return str(exc)
    raise AssertionError(f"{params} with {nclasses} classes at {tilesize} px was accepted")


def check_learns_squares(plugin: ModelPlugin, params: Params, epochs: int = 10) -> float:
    """Train on bright squares; mean IoU on held-out tiles (callers assert a threshold)."""
    import keras

    keras.utils.set_random_seed(0)
    model = plugin.build(3, 2, 32, params)
    plugin.compile(model, TrainSettings(nclasses=2, learning_rate=1e-2))
    model.fit(*squares(64), batch_size=4, epochs=epochs, verbose=0)
    scores = model.evaluate(*squares(32, seed=1), batch_size=16, verbose=0, return_dict=True)
    return float(scores["miou"])

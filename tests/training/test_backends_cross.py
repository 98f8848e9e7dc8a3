"""A model trained on one Keras backend predicts on the other, both ways, as a user runs it:
``deepseg run`` under one KERAS_BACKEND, then ``deepseg predict`` under the other.

The .keras file holds the weights and the architecture, not the backend's arithmetic, so the
classes are equal and the float32 probabilities differ only by the two backends' kernels
(another order of sums): at most 1e-5 here (measured: below 1e-6). Needs both TensorFlow
and JAX installed (CI's main environment has both, .ci/run).
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from deepseg_core.backend import version
from tests.support import cli
from tests.support.synthetic import squares_scene, write_experiment

pytestmark = pytest.mark.skipif(not (version("tensorflow") and version("jax")),
                                reason="needs TensorFlow and JAX installed")
TOLERANCE = 1e-5


def deepseg(*args: str, backend: str) -> subprocess.CompletedProcess:
    done = cli.deepseg(*args, env={**os.environ, "KERAS_BACKEND": backend}, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def read(path):
    import rasterio

    probabilities = path.with_name(f"{path.stem}_probabilities{path.suffix}")
    with rasterio.open(path) as classes, rasterio.open(probabilities) as probs:
        return classes.read(1), probs.read()


@pytest.mark.parametrize("trained_on, predicted_on", [("tensorflow", "jax"),
                                                      ("jax", "tensorflow")])
def test_a_model_trained_on_one_backend_predicts_the_same_on_the_other(tmp_path, trained_on,
                                                                       predicted_on):
    img, gpkg, _ = squares_scene(tmp_path, size=128, nsquares=14)
    common = dict(name="cross", epochs=2, predict={"probabilities": "float32"})
    path = write_experiment(tmp_path, img, gpkg, **common)
    deepseg("run", str(path), "--stages", "dataprep,train,predict", backend=trained_on)
    outdir = tmp_path / "runs" / "cross"
    assert json.loads((outdir / "model" / "model.json").read_text())["backend"] == trained_on
    other = tmp_path / "other.tif"
    elsewhere = write_experiment(tmp_path, img, gpkg, **{**common, "predict": {
        "probabilities": "float32", "output": str(other)}})
    said = deepseg("predict", str(elsewhere), backend=predicted_on)
    assert f"the model was trained on {trained_on}, predicting on {predicted_on}" in said.stdout
    classes, probs = read(outdir / "predictions" / "prediction.tif")
    other_classes, other_probs = read(other)
    assert np.array_equal(classes, other_classes)
    assert np.abs(probs - other_probs).max() <= TOLERANCE
    assert len(np.unique(classes)) == 2  # a trained model, not a blank map

"""Keras backends, TensorFlow (the default) and JAX: how one is chosen (without starting Keras)
and shown, what records it (model.json, the run key), what depends on it (TensorBoard events,
jit_compile, mixed bfloat16), and the one-line errors (an unsupported backend, a second
backend in one process, a model that runs on TensorFlow only).

The in-process tests run on the session's backend: `pytest --backend jax` (or KERAS_BACKEND)
runs them on JAX, as `nox -s jax` does on JAX's CPU build without TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import yaml

from deepseg_core.backend import check_model, current
from deepseg_core.config import load_experiment
from deepseg_core.errors import DeepSegError
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import dataprep, predict, train
from tests.support import ROOT
from tests.support.cli import SITE
from tests.support.models import TensorFlowBlobs
from tests.support.synthetic import squares_scene, write_experiment

OTHER = {"tensorflow": "jax", "jax": "tensorflow"}


def python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter with ``env`` (KERAS_BACKEND unset unless given, and
    an empty KERAS_HOME, so nothing but ``env`` chooses the backend)."""
    clean = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    home = tmp_path / "keras-home"
    home.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**clean, "KERAS_HOME": str(home), **env}, timeout=300)


def cli(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``deepseg ARGS`` with the test model plugins installed (``tfblobs`` runs on TensorFlow
    only: every shipped model runs on both backends)."""
    paths = os.pathsep.join([str(SITE), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return python(f"from deepseg_core.cli import main; main({list(args)!r})", tmp_path,
                  **{"PYTHONPATH": paths, **env})


CHOSEN = ("import sys, json; from deepseg_core.backend import configured; "
          "print(json.dumps([*configured(), 'keras' in sys.modules]))")


def test_the_backend_is_found_as_keras_finds_it_without_starting_keras(tmp_path):
    chosen = python(CHOSEN, tmp_path, KERAS_BACKEND="jax")
    assert json.loads(chosen.stdout) == ["jax", "KERAS_BACKEND", False], chosen.stderr
    assert json.loads(python(CHOSEN, tmp_path).stdout) == ["tensorflow", "the default", False]
    (tmp_path / "keras-home" / "keras.json").write_text('{"backend": "jax"}')
    path = str(tmp_path / "keras-home" / "keras.json")
    assert json.loads(python(CHOSEN, tmp_path).stdout) == ["jax", path, False]


def test_version_and_plugins_name_the_backend_and_the_tensorflow_only_model(tmp_path):
    shown = cli("--version", tmp_path=tmp_path, KERAS_BACKEND="jax")
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("deepseg, version ") and len(lines) == 2, shown.stderr
    assert lines[1].startswith("Keras backend: jax (jax ") and "keras 3." in lines[1]
    assert lines[1].endswith("; from KERAS_BACKEND)")
    listed = cli("plugins", tmp_path=tmp_path, KERAS_BACKEND="tensorflow").stdout.splitlines()
    assert listed[0].startswith("Keras backend: tensorflow (tensorflow ")
    assert "  models: numpyblobs, numpyfcn, tfblobs [tensorflow only], tinyblobs, tinyfcn" in listed
    assert "  models: maskrcnn" in listed  # TensorFlow and JAX (issue 26)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backends")
    img, gpkg, _ = squares_scene(folder, size=128, nsquares=16)
    return folder, img, gpkg


def test_an_unsupported_backend_and_a_tensorflow_only_model_are_one_line(scene, tmp_path):
    folder, img, gpkg = scene
    semantic = write_experiment(folder, img, gpkg, name="torchy")
    done = cli("validate", str(semantic), tmp_path=tmp_path, KERAS_BACKEND="torch")
    assert done.returncode == 2 and done.stderr.splitlines() == [
        "error: KERAS_BACKEND: Keras backend 'torch' is not supported by DeepSeg (PyTorch and "
        "the others are not: docs/install.md); set KERAS_BACKEND (or the experiment's backend) "
        "to tensorflow or jax"]
    instance = write_experiment(folder, img, gpkg, name="crowns", segmentation_type="instance")
    settings = yaml.safe_load(instance.read_text())
    instance.write_text(yaml.safe_dump({**settings, "model": {"name": "tfblobs"}}))
    done = cli("validate", str(instance), tmp_path=tmp_path, KERAS_BACKEND="jax")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"error: {instance}: model.name: model tfblobs: runs on the tensorflow backend only, "
        "not on jax (from KERAS_BACKEND); set KERAS_BACKEND (or the experiment's backend) to "
        "tensorflow"]
    with pytest.raises(DeepSegError, match="runs on the tensorflow backend only, not on jax"):
        check_model(TensorFlowBlobs(), "tfblobs", "jax")
    check_model(load_plugins().registry.get("model", "maskrcnn"), "maskrcnn", "jax")  # both


def test_the_experiment_s_backend_key_sets_keras_backend_before_keras_starts(scene, tmp_path):
    folder, img, gpkg = scene
    mine, other = current(), OTHER[current()]
    path = write_experiment(folder, img, gpkg, name="keyed", backend=mine)
    chosen = python(f"from deepseg_core.stages import load; load({str(path)!r}); "
                    "import keras; print(keras.backend.backend())", tmp_path,
                    KERAS_BACKEND=other)  # the experiment wins over the environment
    assert chosen.stdout.split() == [mine], chosen.stderr[-2000:]
    late = write_experiment(folder, img, gpkg, name="late", backend=other)
    code = (f"import keras; from deepseg_core.stages import load\ntry: load({str(late)!r})\n"
            "except Exception as exc: print(type(exc).__name__, exc)")
    said = python(code, tmp_path, KERAS_BACKEND=mine).stdout.strip()
    assert said == (f"DeepSegError {late}: backend: {other}, but Keras already runs on {mine} "
                    f"in this process; start a new process (or set KERAS_BACKEND={other} "
                    "before Keras starts)")


def scalar_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tags = set()
    for events in folder.glob("events.*"):
        for event in EventFileLoader(str(events)).Load():
            tags |= {value.tag for value in event.summary.value}
    return tags


def test_model_json_the_run_key_and_tensorboard_on_the_session_backend(scene, registry,
                                                                       tmp_path):
    folder, img, gpkg = scene
    exp = load_experiment(write_experiment(folder, img, gpkg, name="recorded", epochs=2,
                                           workdir=str(tmp_path)))
    dataprep.run(exp, registry)
    train.run(exp, registry)
    info = json.loads((exp.outdir / "model" / "model.json").read_text())
    assert info["backend"] == current()
    state = json.loads((exp.outdir / "model" / "state.json").read_text())
    assert state["settings"].get("backend") == (None if current() == "tensorflow" else "jax")
    assert "jit_compile" not in state["settings"]["training"]  # the default: old keys hold
    board = exp.outdir / "logs" / "tensorboard"
    assert {"epoch_loss", "epoch_miou"} <= scalar_tags(board / "train")
    assert {"epoch_loss", "epoch_miou"} <= scalar_tags(board / "validation")


def test_jit_compile_reaches_the_model_and_predict_gives_the_same_classes(scene, registry,
                                                                         tmp_path):
    import rasterio

    folder, img, gpkg = scene
    common = dict(workdir=str(tmp_path), epochs=1, predict={"probabilities": "float32"})
    exp = load_experiment(write_experiment(folder, img, gpkg, name="jit", training={
        "jit_compile": False, "steps_per_epoch": 2}, **common))
    dataprep.run(exp, registry)
    model = train.run(exp, registry)
    assert model.jit_compile is False
    state = json.loads((exp.outdir / "model" / "state.json").read_text())
    assert state["settings"]["training"]["jit_compile"] is False
    outputs = {}
    for setting in (True, False):
        path = write_experiment(folder, img, gpkg, name="jit", training={
            "jit_compile": False, "steps_per_epoch": 2}, **{**common, "predict": {
                "probabilities": "float32", "jit_compile": setting,
                "output": str(tmp_path / f"jit-{setting}.tif")}})
        out = predict.run(load_experiment(path), registry)
        with rasterio.open(out) as a, rasterio.open(out.with_name(
                f"{out.stem}_probabilities.tif")) as p:
            outputs[setting] = a.read(), p.read()
    assert np.array_equal(outputs[True][0], outputs[False][0])
    assert np.allclose(outputs[True][1], outputs[False][1], rtol=0, atol=1e-5)


@pytest.fixture
def float32_after():
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


def test_mixed_bfloat16_trains_on_the_cpu_and_resumes_to_the_same_weights(
        scene, registry, tmp_path, float32_after):
    folder, img, gpkg = scene
    mixed = {"mixed_precision": "bfloat16", "steps_per_epoch": 2, "seed": 3}
    whole = load_experiment(write_experiment(folder, img, gpkg, name="bf", epochs=2,
                                             workdir=str(tmp_path), training=mixed))
    dataprep.run(whole, registry)
    model = train.run(whole, registry)
    assert model.layers[1].compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in model.weights)
    assert model.get_layer("probabilities").compute_dtype == "float32"
    half = write_experiment(folder, img, gpkg, name="bf2", epochs=1, workdir=str(tmp_path),
                            training=mixed)
    train.run(load_experiment(half), registry)
    settings = yaml.safe_load(half.read_text())
    settings.update(epochs=2, training={**mixed, "resume": True})
    half.write_text(yaml.safe_dump(settings))
    resumed = train.run(load_experiment(half), registry)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(),
                                                    resumed.get_weights()))


@pytest.mark.skipif(find_spec("jax") is None, reason="JAX is not installed")
def test_the_data_parallel_input_of_a_process_is_its_replicas_parts(scene, registry):
    from deepseg_core.store.identity import store_path
    from deepseg_core.training.dataset import Feed, StoreDataset, WorkerShare

    folder, img, gpkg = scene
    exp = load_experiment(write_experiment(folder, img, gpkg, name="share"))
    dataprep.run(exp, registry)
    data = StoreDataset(store_path(exp), np.arange(12), Feed(registry.get(
        "model", "unet64"), 8, seed=2), shuffle=True)
    data.epoch = 1
    share = WorkerShare(data, first=2, local=2, parts=4)  # process 1 of 2, 2 devices each
    x, y = share[0]
    parts = [data.batch(1, 0, k, 4) for k in (2, 3)]
    assert np.array_equal(x, np.concatenate([p[0] for p in parts]))
    assert np.array_equal(y, np.concatenate([p[1] for p in parts]))
    assert len(share) == data.steps and len(x) == 4

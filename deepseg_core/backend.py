"""The Keras backend DeepSeg runs on: TensorFlow (the default) or JAX.

Keras picks its backend once, when it is first imported: ``KERAS_BACKEND``, else the
``backend`` of ``$KERAS_HOME/keras.json`` (default ``~/.keras/keras.json``), else TensorFlow.
DeepSeg reads the same without importing Keras, so ``deepseg --help``, ``--version`` and
``deepseg plugins`` stay fast; an experiment's ``backend`` key sets ``KERAS_BACKEND`` before
Keras starts. The training engine's backend-specific code is in ``training/backend_tf.py``
and ``training/backend_jax.py``; everything else uses ``keras.ops``.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import DeepSegError

SUPPORTED = ("tensorflow", "jax")
DEFAULT = "tensorflow"
#: the distributions that provide each backend's module, first found wins
DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos",
                                "tensorflow-intel", "tf-nightly"),
                 "jax": ("jax",), "torch": ("torch",), "numpy": ("numpy",),
                 "openvino": ("openvino",)}
ADVICE = "set KERAS_BACKEND (or the experiment's backend) to tensorflow or jax"


def _keras_started() -> bool:
    """Keras runs in this process (a None entry is a module blocked from importing)."""
    return sys.modules.get("keras") is not None


def configured() -> tuple[str, str]:
    """(backend, where that choice comes from), as Keras chooses it, without importing Keras."""
    if _keras_started():  # started already: its choice is final for this process
        import keras

        return keras.backend.backend(), "Keras, already started in this process"
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], "KERAS_BACKEND"
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    config = Path(home) / "keras.json"
    try:
        chosen = json.loads(config.read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        chosen = None
    if isinstance(chosen, str) and chosen:
        return chosen, str(config)
    return DEFAULT, "the default"


def current() -> str:
    """The backend Keras runs (or will run) on in this process."""
    return configured()[0]


def check(name: str, origin: str) -> str:
    """``name`` if DeepSeg supports it; else a one-line error naming where it was chosen."""
    if name not in SUPPORTED:
        raise DeepSegError(f"{origin}: Keras backend {name!r} is not supported by DeepSeg "
                           f"(PyTorch and the others are not: docs/install.md); {ADVICE}")
    return name


def select(wanted: str | None, source: object = None) -> str:
    """Make ``wanted`` (an experiment's ``backend``; None: Keras' own choice) the backend of
    this process before Keras starts; returns the backend in use."""
    name, origin = configured()
    if wanted is None or wanted == name:
        return check(name, origin)
    where = f"{source or 'experiment'}: backend: {wanted}"
    if _keras_started():
        raise DeepSegError(f"{where}, but Keras already runs on {name} in this process; start "
                           f"a new process (or set KERAS_BACKEND={wanted} before Keras starts)")
    os.environ["KERAS_BACKEND"] = check(wanted, where)
    return wanted


def version(name: str) -> str | None:
    """The installed version of the backend ``name`` (None when it is not installed)."""
    for dist in DISTRIBUTIONS.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def describe() -> str:
    """One line: the backend, its version and Keras', and where the choice comes from."""
    name, origin = configured()
    versions = [f"{name} {version(name) or 'NOT INSTALLED'}"]
    keras = version("keras")
    versions.append(f"keras {keras}" if keras else "keras NOT INSTALLED")
    note = "" if name in SUPPORTED else " (not supported by DeepSeg)"
    return f"Keras backend: {name}{note} ({', '.join(versions)}; from {origin})"


def check_model(plugin: Any, name: str, backend: str | None = None) -> None:
    """A one-line error when the model plugin ``name`` does not run on the backend in use
    (a plugin lists the backends it runs on in ``backends``; none listed: every one)."""
    runs_on = getattr(plugin, "backends", None)
    backend = backend or current()
    if runs_on and backend not in runs_on:
        raise DeepSegError(f"model {name}: runs on the {' and '.join(runs_on)} backend only, "
                           f"not on {backend} (from {configured()[1]}); set KERAS_BACKEND "
                           f"(or the experiment's backend) to {runs_on[0]}")


def set_jit(model: Any, setting: bool | str) -> None:
    """``training.jit_compile`` / ``predict.jit_compile`` on a Keras model: XLA for its step
    functions, or not (``auto``: Keras' choice, XLA always on JAX and, on TensorFlow, where op
    determinism is off, i.e. on GPUs). The step functions are made again as now set."""
    if setting == "auto" or not hasattr(model, "jit_compile"):
        return
    model.jit_compile = bool(setting)
    for name in ("train_function", "test_function", "predict_function"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)

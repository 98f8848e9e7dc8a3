"""Process-wide defaults the core sets before TensorFlow or GDAL start; a user overrides them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("TF_ENABLE_ONEDNN_OPTS", "GDAL_CACHEMAX")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("env", "expected"), [({}, "0"), ({"TF_ENABLE_ONEDNN_OPTS": "1"}, "1")])
def test_onednn_is_off_unless_the_user_turns_it_on(env, expected):
    out = _run("import os, deepseg_core; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])", **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def test_tensorflow_imported_after_the_core_runs_without_onednn_custom_ops():
    code = ("import deepseg_core, tensorflow as tf\n"
            "x = tf.ones((1, 8, 8, 2))\n"
            "print(float(tf.reduce_sum(tf.nn.conv2d(x, tf.ones((3, 3, 2, 1)), 1, 'SAME'))))")
    default, opted_in = _run(code), _run(code, TF_ENABLE_ONEDNN_OPTS="1")
    assert default.returncode == 0 and opted_in.returncode == 0, default.stderr + opted_in.stderr
    assert float(default.stdout) == float(opted_in.stdout) == 2 * (36 * 9 + 24 * 6 + 4 * 4)
    assert "oneDNN custom operations are on" in opted_in.stderr
    assert "oneDNN custom operations are on" not in default.stderr


@pytest.mark.parametrize(("env", "expected"), [({}, "64"), ({"GDAL_CACHEMAX": "512"}, "512")])
def test_gdal_block_cache_is_bounded_unless_the_user_sets_it(env, expected):
    code = "import os, deepseg_core.builtin.rasterio_io; print(os.environ['GDAL_CACHEMAX'])"
    out = _run(code, **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


FAULTS = """
import resource, sys
import numpy as np, deepseg_core, keras
from deepseg_core.training.callbacks import HeapSettings


class Batches(keras.utils.PyDataset):  # fit runs it through TensorFlow's generator dataset
    def __len__(self):
        return 12

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        return (rng.normal(size=(8, 64, 64, 4)).astype("float32"),
                rng.integers(0, 3, (8, 64, 64)))


class Faults(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:  # tracing and first allocations done
            self.first = resource.getrusage(resource.RUSAGE_SELF).ru_minflt


inputs = keras.Input((64, 64, 4))
x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
model = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(x))
model.compile("adam", "sparse_categorical_crossentropy")
faults = Faults()
model.fit(Batches(), epochs=3, verbose=0, callbacks=[HeapSettings(), faults])
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults.first)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_training_steps_reuse_heap_memory_instead_of_faulting_pages_in_anew():
    """glibc's thresholds (deepseg_core.training.heap): training's page faults fall several-fold;
    DEEPSEG_MALLOC=glibc keeps glibc's behaviour."""
    tuned, default = _run(FAULTS), _run(FAULTS, DEEPSEG_MALLOC="glibc")
    assert tuned.returncode == 0 and default.returncode == 0, tuned.stderr + default.stderr
    tuned_faults, default_faults = int(tuned.stdout.split()[-1]), int(default.stdout.split()[-1])
    assert tuned_faults * 3 < default_faults, (tuned_faults, default_faults)

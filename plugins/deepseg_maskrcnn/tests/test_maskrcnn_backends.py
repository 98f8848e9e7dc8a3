"""The same weights give the same Mask R-CNN on TensorFlow and on JAX (issue 26): a tiny model
of 64 px tiles built and stepped on TensorFlow, its weights file loaded and stepped on JAX.

Compared: the detections (count, class ids, boxes, scores, masks); each layer that makes
discrete choices (proposals' top-k and NMS, detection's per-class NMS, the RPN's and the
ROIs' sampled targets) on the same inputs: equal choices; the five losses at those weights, one
SGD step's logs, and the two weights files after that step (same names and shapes). The two
backends' float32 kernels sum in other orders (and TensorFlow's ROIAlign is crop_and_resize,
JAX's a gather): boxes within 1e-3 px, scores, mask probabilities and network outputs within
1e-4, losses within 1e-4 relative, weights after the step within 1e-4 (measured: 7.6e-6 px,
1.2e-7, 7.7e-7, 5e-6 on the mask logits, 2.4e-7 and 2.2e-5). Needs TensorFlow and JAX
installed; each side runs in its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from deepseg_core.backend import version

pytestmark = pytest.mark.skipif(not (version("tensorflow") and version("jax")),
                                reason="needs TensorFlow and JAX installed")
SIDE = Path(__file__).resolve().parent / "cross_backend.py"


def run(backend: str, folder: Path, *weights: str) -> dict:
    done = subprocess.run([sys.executable, str(SIDE), str(folder), *weights],
                          env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(folder / f"{backend}.npz"))


def arrays(path: Path) -> dict:
    found = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, item: found.update(
            {name: item[()]} if isinstance(item, h5py.Dataset) else {}))
    return found


def test_same_weights_same_detections_losses_and_step_on_both_backends(tmp_path):
    tf = run("tensorflow", tmp_path)
    jax = run("jax", tmp_path, str(tmp_path / "tensorflow.initial.weights.h5"))
    assert tf["count"].tolist() == jax["count"].tolist() and tf["count"].sum() > 0
    assert np.array_equal(tf["class_ids"], jax["class_ids"])
    np.testing.assert_allclose(jax["boxes"], tf["boxes"], atol=1e-3)
    np.testing.assert_allclose(jax["scores"], tf["scores"], atol=1e-4)
    np.testing.assert_allclose(jax["masks"], tf["masks"], atol=1e-4)
    for name in ("rpn_logits", "rpn_deltas", "proposals", "head_logits", "head_deltas",
                 "det_boxes", "det_scores", "mask_logits", "rpn_targets", "rois", "roi_deltas"):
        np.testing.assert_allclose(jax[name], tf[name], atol=1e-4, err_msg=name)
    for name in ("det_class_ids", "det_count", "rpn_labels", "roi_classes", "sampled",
                 "mask_targets"):
        assert np.array_equal(jax[name], tf[name]), name
    assert tf["det_count"].sum() > 0 and (tf["rpn_labels"] == 1).any()
    assert (tf["roi_classes"] > 0).any() and tf["mask_targets"].any()
    assert np.all(tf["losses"] > 0)
    np.testing.assert_allclose(jax["losses"], tf["losses"], rtol=1e-4)
    np.testing.assert_allclose(jax["logs"], tf["logs"], rtol=1e-4)
    stepped_tf, stepped_jax = arrays(tmp_path / "tensorflow.weights.h5"), arrays(
        tmp_path / "jax.weights.h5")
    assert stepped_tf.keys() == stepped_jax.keys() and len(stepped_tf) > 50
    for name, value in stepped_tf.items():
        np.testing.assert_allclose(stepped_jax[name], value, atol=1e-4, err_msg=name)

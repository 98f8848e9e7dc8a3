"""The semantic loss and metrics (keras.ops) on the session's backend, against NumPy: class
weights, the ignore label excluded from the loss and the confusion counts, cross-entropy,
Dice and both; and 'auto' class weights reaching a training run. `pytest --backend jax`
runs them on JAX."""

from __future__ import annotations

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import dataprep, train
from tests.support.synthetic import squares_scene, write_experiment

IGNORE = 255


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels (2, 8, 8) with ignored pixels and softmax probabilities (2, 8, 8, 3)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, (2, 8, 8)).astype("int32")
    labels[rng.random((2, 8, 8)) < 0.2] = IGNORE
    logits = rng.normal(size=(2, 8, 8, 3))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return labels, probs.astype("float32")


def reference(labels, probs, kind, weights):
    valid = labels != IGNORE
    safe = np.where(valid, labels, 0)
    onehot = np.eye(3)[safe]
    loss = 0.0
    if "ce" in kind.split("+"):
        ce = -np.log(np.clip((onehot * probs).sum(-1), 1e-7, 1))
        if weights is not None:
            ce = ce * np.asarray(weights)[safe]
        loss += (ce * valid).sum() / valid.sum()
    if "dice" in kind.split("+"):
        mask = valid[..., None]
        inter = (onehot * probs * mask).sum((0, 1, 2))
        denom = ((onehot + probs) * mask).sum((0, 1, 2))
        loss += 1 - ((2 * inter + 1) / (denom + 1)).mean()
    return loss


@pytest.mark.parametrize("kind", ["ce", "dice", "ce+dice"])
@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 1.0]])
def test_the_loss_weights_classes_and_leaves_the_ignore_label_out(kind, weights):
    import keras

    from deepseg_core.models.losses import SegmentationLoss

    labels, probs = batch()
    loss = SegmentationLoss(3, kind=kind, class_weights=weights, ignore_label=IGNORE)
    value = float(keras.ops.convert_to_numpy(loss(labels, probs)))
    assert value == pytest.approx(reference(labels, probs, kind, weights), rel=1e-5)
    changed = probs.copy()
    changed[labels == IGNORE] = [1.0, 0.0, 0.0]  # what ignored pixels predict does not count
    assert float(keras.ops.convert_to_numpy(loss(labels, changed))) == pytest.approx(value,
                                                                                    rel=1e-6)


def test_accuracy_and_mean_iou_count_labelled_pixels_only():
    import keras

    from deepseg_core.models.losses import masked_metrics

    labels, probs = batch(1)
    valid = labels != IGNORE
    truth, guess = labels[valid], probs.argmax(-1)[valid]
    counts = np.zeros((3, 3))
    np.add.at(counts, (truth, guess), 1)
    union = counts.sum(0) + counts.sum(1) - np.diag(counts)
    accuracy, miou = masked_metrics(3, IGNORE)
    for metric in (accuracy, miou):
        metric.update_state(labels[:1], probs[:1])  # two batches accumulate
        metric.update_state(labels[1:], probs[1:])
    assert float(keras.ops.convert_to_numpy(accuracy.result())) == pytest.approx(
        np.diag(counts).sum() / counts.sum(), rel=1e-6)
    assert float(keras.ops.convert_to_numpy(miou.result())) == pytest.approx(
        (np.diag(counts) / union)[union > 0].mean(), rel=1e-6)
    miou.reset_state()
    assert float(keras.ops.convert_to_numpy(miou.result())) == 0.0


def test_auto_class_weights_reach_the_compiled_loss(tmp_path):
    registry = load_plugins().registry
    img, gpkg, truth = squares_scene(tmp_path, size=96, nsquares=10)
    exp = load_experiment(write_experiment(tmp_path, img, gpkg, name="weighted", epochs=1,
                                           training={"class_weights": "auto",
                                                     "steps_per_epoch": 1}))
    dataprep.run(exp, registry)
    model = train.run(exp, registry)
    weights = model.loss.class_weights
    assert len(weights) == 2 and weights[1] > weights[0] > 0  # squares are the rarer class

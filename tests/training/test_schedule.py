"""The learning-rate schedule: warm-up, constant or cosine, a function of (epoch, step) alone."""

import csv

import keras
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import dataprep, train
from deepseg_core.training.schedule import COSINE_FLOOR, LearningRateSchedule, rate_at
from tests.support.synthetic import squares_scene, write_experiment


def test_warm_up_is_linear_and_the_cosine_ends_at_its_floor():
    rates = [rate_at(t, 0.1, "cosine", 4, 20) for t in range(20)]
    assert rates[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert rates[4] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(rates[4:], rates[5:]))
    assert rates[-1] == pytest.approx(0.1 * COSINE_FLOOR, rel=0.05)
    assert [rate_at(t, 0.1, "constant", 2, 20) for t in (0, 1, 2, 19)] == pytest.approx(
        [0.05, 0.1, 0.1, 0.1])


class _Model:
    def __init__(self):
        self.optimizer = keras.optimizers.Adam(1.0)


def _rates(callback, epochs, steps) -> list[float]:
    callback.set_model(_Model())
    seen = []
    for epoch in epochs:
        callback.on_epoch_begin(epoch)
        for step in range(steps):
            callback.on_train_batch_begin(step)
            seen.append(float(callback.model.optimizer.learning_rate))
    return seen


def test_a_resumed_run_continues_the_schedule_of_an_uninterrupted_one():
    full = _rates(LearningRateSchedule(0.01, "cosine", 0.5, 4, 6), range(4), 6)
    resumed = _rates(LearningRateSchedule(0.01, "cosine", 0.5, 4, 6), range(2, 4), 6)
    assert resumed == full[12:]
    assert full[0] < full[2] == pytest.approx(0.01) and full[-1] < full[3] / 10


def test_the_constant_schedule_leaves_the_rate_alone_after_its_warm_up():
    callback = LearningRateSchedule(0.01, "constant", 1, 3, 4)
    rates = _rates(callback, [0], 4)
    assert rates == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    callback.model.optimizer.learning_rate.assign(0.005)  # as ReduceLROnPlateau would
    callback.on_epoch_begin(1)
    callback.on_train_batch_begin(0)
    assert float(callback.model.optimizer.learning_rate) == pytest.approx(0.005)


def test_training_logs_the_rates_of_its_cosine_schedule(tmp_path):
    img, gpkg, _ = squares_scene(tmp_path, size=96, nsquares=6)
    registry = load_plugins().registry
    exp = load_experiment(write_experiment(
        tmp_path, img, gpkg, epochs=3, learning_rate=0.02,
        training={"batch_size": 4, "lr_schedule": "cosine", "warmup_epochs": 1}))
    dataprep.run(exp, registry)
    train.run(exp, registry)
    with open(exp.outdir / "logs" / "training.csv", newline="") as handle:
        logged = [float(r["learning_rate"]) for r in csv.DictReader(handle)]
    steps = len(logged) and round(
        keras.saving.load_model(exp.outdir / "model" / "last.keras").optimizer.iterations
        .numpy() / 3)
    assert steps > 0
    expected = [rate_at((e + 1) * steps - 1, 0.02, "cosine", steps, 3 * steps) for e in range(3)]
    assert logged == pytest.approx(expected, rel=1e-5)

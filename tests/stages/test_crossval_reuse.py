"""Crossval takes the train stage's finished run for the fold that run held out, and only
when that run is the fold's run: same tiles, same settings, all epochs, validation only
watching. On CPU with a fixed seed the fold trained on its own gives the same weights and the
same confusion counts as the run it takes."""

import json
import shutil

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.data.folds import split
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import crossval, dataprep, train
from deepseg_core.store.identity import open_store
from deepseg_core.training.reuse import finished_run
from tests.support.synthetic import squares_scene, write_experiment

pytestmark = pytest.mark.xdist_group("crossval_reuse")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    registry = load_plugins().registry
    folder = tmp_path_factory.mktemp("reuse")
    img, gpkg, _ = squares_scene(folder, size=128, nsquares=20)

    def experiment(name, **changes):
        settings = {"epochs": 3, "folds": 2, "crossval": {"folds": [1]}, **changes}
        return load_experiment(write_experiment(folder, img, gpkg, name=name, **settings))

    staged = experiment("staged")
    dataprep.run(staged, registry)
    train.run(staged, registry)  # holds out the last fold, 1
    crossval.run(staged, registry)  # fold 1: takes the train stage's run
    own = experiment("own")
    crossval.run(own, registry)  # fold 1 trained by crossval itself
    return experiment, staged, own


def weights(path):
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


def test_the_taken_run_equals_the_fold_trained_on_its_own(runs):
    _, staged, own = runs
    fold = staged.outdir / "crossval" / "fold1"
    assert (fold / "model" / "last.keras").read_bytes() == (
        staged.outdir / "model" / "last.keras").read_bytes()
    assert not (fold / "model" / "best.keras").exists()  # picked on the fold's test tiles
    assert (fold / "logs" / "training.csv").exists() and (fold / "logs" / "curves.png").exists()
    trained = own.outdir / "crossval" / "fold1"
    assert all(np.array_equal(a, b) for a, b in zip(weights(fold / "model" / "last.keras"),
                                                    weights(trained / "model" / "last.keras")))
    taken, ran = (json.loads((d / "metrics.json").read_text()) for d in (fold, trained))
    assert taken == ran and np.asarray(taken["states"]["pycm"]["counts"]).sum() > 0


def test_the_fold_says_it_took_the_train_stage_run(runs, capsys):
    _, staged, _ = runs
    crossval.run(staged, load_plugins().registry)
    out = capsys.readouterr().out
    assert f"fold 1: the train stage's run ({staged.outdir / 'model' / 'last.keras'}) " in out
    assert "not trained again" in out


def _train_idx(exp):
    with open_store(exp) as store:
        tiles = store.tiles
        return split(tiles["fold"], tiles["row"], tiles["col"], exp.tilesize, [1])[0]


@pytest.mark.parametrize("change", [{"epochs": 4}, {"learning_rate": 0.02},
                                    {"training": {"seed": 2}}, {"training": {"reduce_lr": 1}},
                                    {"training": {"early_stopping": 2}}, {"augmentation": []}])
def test_a_run_of_other_settings_is_not_taken(runs, change):
    experiment, staged, _ = runs
    exp = experiment("variant", **change)
    assert finished_run(staged, staged.outdir, _train_idx(staged)) is not None
    assert finished_run(exp, staged.outdir, _train_idx(staged)) is None


def test_other_tiles_an_unfinished_run_or_damaged_weights_are_not_taken(runs, tmp_path):
    _, staged, _ = runs
    idx = _train_idx(staged)
    assert finished_run(staged, staged.outdir, idx[:-1]) is None
    copy = tmp_path / "run"
    shutil.copytree(staged.outdir / "model", copy / "model")
    assert finished_run(staged, copy, idx) == copy / "model" / "last.keras"
    state = copy / "model" / "state.json"
    record = json.loads(state.read_text())
    state.write_text(json.dumps({**record, "epoch": 2}))  # killed after epoch 2 of 3
    assert finished_run(staged, copy, idx) is None
    state.write_text(json.dumps(record))
    last = copy / "model" / "last.keras"
    data = bytearray(last.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\0" * 64  # bytes overwritten mid-file
    last.write_bytes(bytes(data))
    assert finished_run(staged, copy, idx) is None
    (copy / "model" / "model.json").write_text("{trunc")
    assert finished_run(staged, copy, idx) is None

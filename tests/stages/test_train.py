"""Train stage: learning, logs and curves, resume, seeds, data loading, bad input."""

import csv

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.errors import DeepSegError
from deepseg_core.stages import dataprep, train
from deepseg_core.store.identity import store_path
from tests.support.synthetic import squares_scene, write_experiment


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    img, gpkg, _ = squares_scene(folder, size=192, nsquares=30)
    return folder, img, gpkg


def prepared(folder, img, gpkg, registry, **over):
    exp = load_experiment(write_experiment(folder, img, gpkg, **over))
    dataprep.run(exp, registry)
    return exp


def log_rows(exp):
    with open(exp.outdir / "logs" / "training.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("model", ["unet64", "resunet"])
def test_tiny_models_learn_a_two_class_pattern(scene, registry, model):
    folder, img, gpkg = scene
    exp = prepared(folder, img, gpkg, registry, name=model, epochs=8,
                   model={"name": model, "filters": 8, "depth": 2},
                   training={"batch_size": 4})
    train.run(exp, registry)
    rows = log_rows(exp)
    assert len(rows) == 8
    best = max(float(r["val_miou"]) for r in rows)
    assert best >= 0.9, rows[-1]
    for name in ("best.keras", "last.keras", "model.json", "state.json"):
        assert (exp.outdir / "model" / name).exists()
    assert (exp.outdir / "experiment.yaml").exists()


def test_real_sentinel2_store_trains_and_curves_match_the_log(shared_data, tmp_path, registry):
    tiles = shared_data / "rsgislib" / "s2_over_tiles"
    gpkg = shared_data / "rsgislib" / "classification" / "cls_poly_smpls.gpkg"
    names = ["forest", "grass", "urban", "water"]
    classes = [{"name": "background"}] + [{"name": n, "value": f"cls_{n}_smpls"} for n in names]
    exp = prepared(tmp_path, str(tiles / "*.tif"), gpkg, registry, nbands=10, tilesize=32,
                   overlap=8, folds=3, classes=classes, epochs=4, learning_rate=0.005,
                   labels={"path": str(gpkg), "outside": "ignore", "class_field": None},
                   training={"batch_size": 8, "loss": "ce"})
    train.run(exp, registry)
    rows = log_rows(exp)
    losses = [float(r["loss"]) for r in rows]
    assert len(rows) == 4 and losses[-1] < losses[0]
    png = exp.outdir / "logs" / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from deepseg_core.training.curves import read_log

    assert read_log(exp.outdir / "logs" / "training.csv")["loss"] == pytest.approx(losses)
    events = list((exp.outdir / "logs" / "tensorboard").rglob("events.out.tfevents.*"))
    assert events


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def test_seed_reproduces_weights_and_resume_continues(scene, registry, tmp_path):
    folder, img, gpkg = scene
    common = dict(model={"name": "unet64", "filters": 4, "depth": 2},
                  training={"batch_size": 8, "seed": 7}, workdir=str(tmp_path))
    a = prepared(folder, img, gpkg, registry, name="a", epochs=3, **common)
    b = prepared(folder, img, gpkg, registry, name="b", epochs=3, **common)
    wa, wb = _weights(train.run(a, registry)), \
        _weights(train.run(b, registry))
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
    full_iterations = None
    import keras

    full_iterations = int(keras.saving.load_model(a.outdir / "model" / "last.keras",
                                                  compile=True).optimizer.iterations)
    # interrupted after 2 epochs, then resumed to 3
    c = prepared(folder, img, gpkg, registry, name="c", epochs=2, **common)
    train.run(c, registry)
    resume = dict(common, training={**common["training"], "resume": True})
    c3 = prepared(folder, img, gpkg, registry, name="c", epochs=3, **resume)
    model = train.run(c3, registry)
    assert len(log_rows(c3)) == 3
    assert int(model.optimizer.iterations) == full_iterations
    assert [int(r["epoch"]) for r in log_rows(c3)] == [0, 1, 2]


def test_two_workers_serve_the_same_batches_as_none(scene, registry):
    from deepseg_core.training.dataset import Feed, StoreDataset

    folder, img, gpkg = scene
    exp = prepared(folder, img, gpkg, registry, name="ds")
    path = store_path(exp)
    plugin = registry.get("model", "unet64")
    augs = (registry.get("augmenter", "flips")(),)
    feed = Feed(plugin, 4, ignore_label=255, augmenters=augs, seed=3)
    plain = StoreDataset(path, np.arange(10), feed, shuffle=True, workers=0)
    pooled = StoreDataset(path, np.arange(10), feed, shuffle=True, workers=2)
    assert pooled.workers == 2 and pooled.use_multiprocessing
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(pooled, shuffle=False)
    served = list(adapter.get_numpy_iterator())
    assert len(served) == len(plain)
    for i, (x, y) in enumerate(served):
        px, py = plain[i]
        assert np.array_equal(x, px) and np.array_equal(y, py)


def test_loader_processes_serve_each_replicas_part_as_the_dataset_makes_it(scene, registry):
    """The distributed input's loaders (training.workers): the same parts, in order."""
    from deepseg_core.training.dataset import Feed, StoreDataset

    folder, img, gpkg = scene
    exp = prepared(folder, img, gpkg, registry, name="ds")
    feed = Feed(registry.get("model", "unet64"), 4, ignore_label=255,
                augmenters=(registry.get("augmenter", "flips")(),), seed=3)
    plain = StoreDataset(store_path(exp), np.arange(10), feed, shuffle=True, workers=0)
    pooled = StoreDataset(store_path(exp), np.arange(10), feed, shuffle=True, workers=2)
    keys = [(e, s, p, 2) for e in range(2) for s in range(len(plain)) for p in range(2)]
    try:
        served = list(pooled.loader().batches(keys))
    finally:
        pooled.close()
    assert len(served) == len(keys) == 12
    for key, (x, y) in zip(keys, served):
        px, py = plain.batch(*key)
        assert np.array_equal(x, px) and np.array_equal(y, py), key


def test_batches_are_prepared_with_the_experiments_model_parameters(scene, registry):
    from deepseg_core.training.dataset import Feed, StoreDataset

    folder, img, gpkg = scene
    exp = prepared(folder, img, gpkg, registry, name="ds")
    unet = registry.get("model", "unet64")
    seen = []

    class Recording:
        def prepare_batch(self, images, labels, instance_classes=None, params=None):
            seen.append(params)
            return unet.prepare_batch(images, labels, instance_classes, params)

    path, tiles = store_path(exp), np.arange(4)
    StoreDataset(path, tiles, Feed(Recording(), 2, exp.model.params))[1]
    StoreDataset(path, tiles, Feed(Recording(), 2))[0]
    assert seen == [exp.model.params, {}] and exp.model.params


@pytest.mark.parametrize("case, message", [
    ("nbands", "built for other settings"),
    ("missing", "run 'deepseg dataprep' first"),
    ("resume", "no checkpoint to resume from"),
    ("tilesize", r"divisible by 2\^3"),
    ("unknown", "unknown model 'unet65'"),
])
def test_bad_input_fails_before_training(scene, registry, tmp_path, case, message):
    from deepseg_core.config import check_registry

    folder, img, gpkg = scene
    over = dict(workdir=str(tmp_path), name=case)
    exp = prepared(folder, img, gpkg, registry, **over)
    if case == "nbands":  # a store built from other classes sits at the configured path
        store = store_path(exp)
        exp = prepared(folder, img, gpkg, registry, store={"path": str(store)}, **over)
        classes = [{"name": "background"}, {"name": "other", "value": "square"}]
        exp = load_experiment(write_experiment(folder, img, gpkg, classes=classes,
                                               store={"path": str(store)}, **over))
    elif case == "missing":
        exp = load_experiment(write_experiment(folder, img, gpkg, overlap=2, **over))
    elif case == "resume":
        exp = load_experiment(write_experiment(folder, img, gpkg, training={"resume": True},
                                               **over))
    elif case in ("tilesize", "unknown"):
        model = {"name": "unet64" if case == "tilesize" else "unet65", "depth": 3}
        exp = load_experiment(write_experiment(folder, img, gpkg, tilesize=36, overlap=4,
                                               model=model, **over))
        with pytest.raises(DeepSegError, match=message):
            check_registry(exp, registry)
        return
    with pytest.raises(DeepSegError, match=message):
        train.run(exp, registry)
    assert not (exp.outdir / "model" / "last.keras").exists()


def test_epochs_zero_is_rejected(scene):
    folder, img, gpkg = scene
    with pytest.raises(DeepSegError, match="epochs: .*greater than or equal to 1"):
        load_experiment(write_experiment(folder, img, gpkg, epochs=0, name="zero"))


def test_mixed_precision_falls_back_to_float32_without_a_gpu(scene, registry, tmp_path):
    import keras

    folder, img, gpkg = scene
    exp = prepared(folder, img, gpkg, registry, name="mp", epochs=1, workdir=str(tmp_path),
                   training={"mixed_precision": True, "steps_per_epoch": 1})
    with pytest.warns(UserWarning, match="no GPU visible, training in float32"):
        model = train.run(exp, registry)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert model.layers[1].compute_dtype == "float32"
    assert len(log_rows(exp)) == 1

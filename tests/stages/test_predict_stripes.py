"""The predict stage blending in stripes, end to end: any stripe width, sharded and merged or
not, and a third-party tiler that returns a list give the outputs of one run over a single
stripe, bit for bit."""

import bisect
import json
import shutil
import types

import numpy as np
import pytest
import rasterio

from deepseg_core import hookimpl
from deepseg_core.builtin.tiler import grid_tiles
from deepseg_core.config import load_experiment
from deepseg_core.geo.grid import row_origins, striped
from deepseg_core.models.folder import model_info
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import predict
from tests.support import models
from tests.support.kills import When, kill_then_finish
from tests.support.scenarios import run
from tests.support.synthetic import write_experiment, write_raster


@pytest.fixture(scope="module")
def listing_registry():
    """The test models and a third-party tiler that returns a list (``listgrid``)."""
    listing = types.ModuleType("listtiler")

    @hookimpl
    def deepseg_register_tilers(registry):
        registry.add_tiler("listgrid", lambda *args: list(grid_tiles(*args)))

    listing.deepseg_register_tilers = deepseg_register_tilers
    return load_plugins(extra=[("testmodels", models), ("listtiler", listing)]).registry


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stripes")
    data = np.random.default_rng(3).integers(1, 255, (3, 90, 200)).astype("uint8")
    data[:, :40, :50] = 0  # whole nodata tiles
    image = write_raster(folder / "img.tif", data, nodata=0)
    labels = folder / "unused.gpkg"
    labels.write_text("")
    return folder, image, labels


def experiment(scene, registry, name, model_from=None, **predict_settings):
    """A blending experiment with an untrained TinyFCN (or the model of ``model_from``)."""
    import keras

    folder, image, labels = scene
    # batches of one tile: stripes change which tiles share a batch, and a CPU kernel may round
    # a tile differently in another batch (docs/stages.md)
    settings = {"blend": True, "probabilities": "float32", "batch_size": 1, **predict_settings}
    tiler = settings.pop("tiler", "grid")
    exp = load_experiment(write_experiment(
        folder, image, labels, name=name, model="tinyfcn", tilesize=32, overlap=12,
        tiler=tiler, classes=[{"name": "a"}, {"name": "b"}, {"name": "c"}],
        predict=settings))
    model = exp.outdir / "model"
    if model_from is not None:
        shutil.copytree(model_from.outdir / "model", model)
        return exp
    keras.utils.set_random_seed(0)
    model.mkdir(parents=True)
    registry.get("model", "tinyfcn").build(3, 3, 32, {}).save(model / "best.keras")
    stats = {"count": [1] * 3, "mean": [120.0] * 3, "std": [70.0] * 3, "min": [0] * 3,
             "max": [255] * 3}
    model_info(exp, stats, [], None, 0.5).write(model / "model.json")
    return exp


def outputs(exp):
    out = predict.output_path(exp)
    with rasterio.open(out) as classes, \
            rasterio.open(out.with_name(f"{out.stem}_probabilities{out.suffix}")) as probs:
        return classes.read(), probs.read()


def test_stripe_widths_shards_and_list_tilers_give_one_stripe_s_outputs(scene,
                                                                       listing_registry):
    registry = listing_registry
    one = experiment(scene, registry, "one")
    predict.run(one, registry)
    classes, probs = outputs(one)
    assert (classes[0, :40, :50] == 255).all() and (classes[0, 40:] != 255).all()
    for name, shards, settings in [("narrow", 1, {"stripe_width": 16}),
                                   ("sharded", 3, {"stripe_width": 48}),
                                   ("listed", 2, {"stripe_width": 64, "tiler": "listgrid"})]:
        exp = experiment(scene, registry, name, model_from=one, **settings)
        if shards == 1:
            predict.run(exp, registry)
        else:
            for i in range(shards):
                predict.run(exp, registry, shard=f"{i}/{shards}")
            predict.run(exp, registry, merge=True)
        got_classes, got_probs = outputs(exp)
        assert np.array_equal(got_classes, classes), name
        assert np.array_equal(got_probs, probs, equal_nan=True), name


@pytest.mark.faults
def test_killed_after_commits_in_several_stripes_it_resumes_to_the_same_outputs(scene,
                                                                                registry):
    """The CLI in a subprocess, SIGKILLed once its commit record passes each threshold (tiles
    of the first, second and third stripe), resumed every time, then finished."""
    exp = experiment(scene, registry, "killed", stripe_width=64)
    run("predict", exp.source)
    reference = outputs(exp)
    shutil.rmtree(predict.output_path(exp).parent)
    record = predict.output_path(exp).with_name("prediction.tif.part-0000-of-0001.commit.json")

    def committed():
        try:
            return json.loads(record.read_text())["tiles"]
        except (OSError, ValueError, KeyError):
            return -1

    thresholds = [When(lambda t=t: committed() >= t) for t in (1, 10, 20, 30, 40, 50)]
    seen = kill_then_finish(["predict", exp.source], thresholds, test_models=True,
                            probe=committed).states
    grid = grid_tiles(200, 90, 32, 12)
    stripes = [s.first for s in striped(grid, row_origins(grid), 200, 64)[1]]
    assert len({bisect.bisect_right(stripes, t) for t in seen if t > 0}) >= 3, (seen, stripes)
    got = outputs(exp)
    assert np.array_equal(got[0], reference[0])
    assert np.array_equal(got[1], reference[1], equal_nan=True)

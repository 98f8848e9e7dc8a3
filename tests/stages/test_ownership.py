"""Outputs belong to their inputs, one writer at a time: from outside the process.

Each case is what a user on a shared cluster does: replace an input image (same path, even the
same size and mtime, or the experiment pointing at another file), retrain the weights, run two
shards of one job on different inputs, submit a job twice, share a store between experiments,
or work in a folder where someone planted a symlink. The run whose outcome is asserted is the
real CLI in its own process (``tests.support.cli``); a second writer is a real concurrent
process held still with SIGSTOP while it holds its lock, so the overlap does not depend on
timing.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import numpy as np
import pytest
import rasterio
import yaml

from deepseg_core.config import load_experiment
from deepseg_core.models.exported import model_to_predict
from deepseg_core.stages import predict
from deepseg_core.stages.predict.plan import Plan
from deepseg_core.stages.predict.settings import Settings
from tests.support import cli
from tests.support.cli import assert_one_line_error
from tests.support.kills import wait_for
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, squares_scene, write_experiment


def run(*args):
    """``deepseg ARGS`` with the test models, to its end (stdout and stderr merged)."""
    return cli.deepseg(*args, test_models=True, merged=True)


def start(*args):
    """``deepseg ARGS`` with the test models, started (stdout and stderr merged)."""
    return cli.start(*args, test_models=True)


SEMANTIC = dict(tilesize=32, overlap=8)
INSTANCE = dict(model="tinyblobs", segmentation_type="instance", tilesize=64, overlap=32,
                classes=[{"name": "background"}, {"name": "blob"}],
                predict={"output": "predictions/blobs.tif"})


def setup(tmp_path, registry, size=96, settings=SEMANTIC, seed=3):
    """An experiment over a squares scene and an (untrained) model saved as training would."""
    img, _, _ = squares_scene(tmp_path / "data", size=size, nsquares=8, seed=seed)
    exp = predict_experiment(tmp_path, img, **settings)
    save_untrained(exp, registry, img)
    return exp, img


def yaml_of(exp):
    return exp.source


def classes(path):
    with rasterio.open(path) as src:
        return src.read(1)


def replace_image(img, seed, keep_mtime=False):
    """Overwrite ``img`` in place with another acquisition of the same grid and size."""
    before = os.stat(img)
    with rasterio.open(img) as src:
        profile, shape = src.profile, (src.count, src.height, src.width)
    data = np.random.default_rng(seed).integers(0, 255, shape).astype("uint8")
    with rasterio.open(img, "w", **profile) as dst:
        dst.write(data)
    assert os.stat(img).st_size == before.st_size
    if keep_mtime:
        os.utime(img, ns=(before.st_atime_ns, before.st_mtime_ns))


def fresh_prediction(tmp_path, registry, exp, img):
    """The map a clean experiment folder gets from ``img`` with the same model."""
    other = tmp_path / "clean"
    shutil.copytree(exp.outdir / "model", other / "runs" / exp.name / "model")
    clean = predict_experiment(other, img, **SEMANTIC)
    return classes(predict.run(clean, registry))


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["new-mtime", "same-size-and-mtime"])
def test_an_image_replaced_on_the_same_path_is_predicted_again(tmp_path, registry, keep_mtime):
    exp, img = setup(tmp_path, registry)
    out = predict.run(exp, registry)
    old = classes(out)
    replace_image(img, seed=11, keep_mtime=keep_mtime)

    done = run("predict", yaml_of(exp))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "changed: input images" in done.stdout, done.stdout[-3000:]
    assert "predicting again" in done.stdout
    new = classes(out)
    assert not np.array_equal(new, old)
    np.testing.assert_array_equal(new, fresh_prediction(tmp_path, registry, exp, img))


def test_an_experiment_pointed_at_another_image_is_predicted_again(tmp_path, registry):
    exp, img = setup(tmp_path, registry)
    out = predict.run(exp, registry)
    other = tmp_path / "data" / "other.tif"
    shutil.copy(img, other)
    replace_image(other, seed=12)
    spec = yaml.safe_load(yaml_of(exp).read_text())
    spec["images"] = [{"path": str(other)}]
    yaml_of(exp).write_text(yaml.safe_dump(spec))

    done = run("predict", yaml_of(exp))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "changed: input images" in done.stdout, done.stdout[-3000:]
    np.testing.assert_array_equal(classes(out), fresh_prediction(tmp_path, registry, exp, other))


def test_retrained_weights_with_the_old_mtime_are_predicted_again(tmp_path, registry):
    exp, img = setup(tmp_path, registry)
    out = predict.run(exp, registry)
    weights = exp.outdir / "model" / "best.keras"
    before = os.stat(weights)
    save_untrained(exp, registry, img, seed=5)  # another model, same size of file or not
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))

    done = run("predict", yaml_of(exp))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "changed: model" in done.stdout, done.stdout[-3000:]
    np.testing.assert_array_equal(classes(out), fresh_prediction(tmp_path, registry, exp, img))


def test_shards_predicted_from_two_images_are_never_merged(tmp_path, registry):
    exp, img = setup(tmp_path, registry, size=128)
    predict.run(exp, registry, shard="0/2")
    replace_image(img, seed=13)
    predict.run(load_experiment(yaml_of(exp)), registry, shard="1/2")
    published = exp.outdir / "predictions"
    before = sorted(p.name for p in published.iterdir())

    done = run("predict", yaml_of(exp), "--merge")
    line = assert_one_line_error(done, "prediction shard 0/2",
                                 "changed: input images")
    keys = [word.strip("(),;") for word in line.split() if len(word.strip("(),;")) == 12]
    assert len(set(keys)) == 2, line  # its key and this run's, both named
    assert sorted(p.name for p in published.iterdir()) == before  # no raster was published


def test_instance_shards_of_other_settings_are_never_merged(tmp_path, registry):
    exp, img = setup(tmp_path, registry, size=128, settings=INSTANCE)
    predict.run(exp, registry, shard="0/2")
    spec = yaml.safe_load(yaml_of(exp).read_text())
    spec["predict"]["score_threshold"] = 0.9
    yaml_of(exp).write_text(yaml.safe_dump(spec))
    predict.run(load_experiment(yaml_of(exp)), registry, shard="1/2")
    published = exp.outdir / "predictions"
    before = sorted(p.name for p in published.iterdir())

    done = run("predict", yaml_of(exp), "--merge")
    assert_one_line_error(done, "prediction shard 0/2", "changed: output settings")
    assert sorted(p.name for p in published.iterdir()) == before


def _lock_appears(folder):
    return lambda: any(folder.rglob("*.lock"))


def test_a_second_predict_of_one_experiment_stops_naming_the_first(tmp_path, registry):
    exp, img = setup(tmp_path, registry, size=160)
    first = start("predict", yaml_of(exp))
    try:
        assert wait_for(_lock_appears(exp.outdir / "predictions"), first), first.stdout.read()
        first.send_signal(signal.SIGSTOP)  # alive, holding its lock, writing nothing
        second = run("predict", yaml_of(exp))
        assert_one_line_error(second, "is being written by", f"pid {first.pid}")
    finally:
        first.send_signal(signal.SIGCONT)
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out[-3000:]
    out_path = exp.outdir / "predictions"
    rasters = [p for p in out_path.iterdir() if p.suffix == ".tif"]
    assert len(rasters) == 1
    np.testing.assert_array_equal(classes(rasters[0]),
                                  fresh_prediction(tmp_path, registry, exp, img))
    assert not list(out_path.rglob("*.lock"))


def test_two_experiments_sharing_a_store_wait_and_reuse(tmp_path):
    img, labels, _ = squares_scene(tmp_path / "data", size=256, nsquares=30, seed=4)
    paths = [write_experiment(tmp_path, img, labels, name=name) for name in ("one", "two")]
    stores = tmp_path / "runs" / "stores"
    first = start("dataprep", paths[0])
    try:
        assert wait_for(lambda: stores.exists() and any(stores.glob("*.lock")), first), \
            first.stdout.read()
        first.send_signal(signal.SIGSTOP)
        second = start("dataprep", paths[1])
        said = []
        for line in second.stdout:  # it says it waits, and waits as long as the holder lives
            said.append(line)
            if "waiting for" in line:
                break
        assert "waiting for" in "".join(said), "".join(said)[-3000:]
        time.sleep(2)
        assert second.poll() is None, "".join(said)[-3000:]  # still waiting, not failed
    finally:
        first.send_signal(signal.SIGCONT)
    out1, _ = first.communicate(timeout=600)
    out2, _ = second.communicate(timeout=600)
    out2 = "".join(said) + out2
    assert first.returncode == 0, out1[-3000:]
    assert second.returncode == 0, out2[-3000:]
    assert "reusing store" in out2, out2[-3000:]
    found = [p for p in stores.iterdir() if p.suffix == ".h5"]
    assert len(found) == 1, sorted(p.name for p in stores.iterdir())  # no temporaries left
    assert not list(stores.glob("*.lock"))
    done = run("dataprep", paths[0])  # the store both used checks out complete
    assert done.returncode == 0 and "reusing store" in done.stdout, done.stdout[-3000:]


def test_a_symlink_planted_at_the_partial_log_is_replaced_not_followed(tmp_path, registry):
    exp, img = setup(tmp_path, registry)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = exp.outdir / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    plan = Plan(Settings.of(exp), registry, model_to_predict(exp))
    try:
        base = plan.partial_base(0, 1)
    finally:
        plan.close()
    planted = base.with_name(base.name + ".blocks")
    planted.symlink_to(victim)

    done = run("predict", yaml_of(exp))
    assert done.returncode == 0, done.stdout[-3000:]
    assert victim.read_text() == "precious\n"
    np.testing.assert_array_equal(classes(folder / "prediction.tif"),
                                  fresh_prediction(tmp_path, registry, exp, img))

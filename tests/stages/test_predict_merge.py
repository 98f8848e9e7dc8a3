"""``deepseg merge`` in threads (predict.merge_workers, --workers): the same outputs as one
thread and as the unsharded run; a damaged shard stops it with one line and nothing written.
Kills of a merge: tests/stages/test_predict_kill.py (the default, the CPUs given: 2 or more
threads wherever the suite has two cores)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from deepseg_core.errors import DeepSegError
from deepseg_core.stages import predict
from tests.support.cli import assert_one_line_error, deepseg, invoke
from tests.support.damage import flip_bit, truncate
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, squares_scene


def pixels(path):
    with rasterio.open(path) as src:
        return src.read()


def sharded(tmp_path, registry, n=3, **settings):
    """An experiment whose ``n`` shards are predicted, and the single run's outputs (classes,
    probabilities) made with one thread."""
    img, _, _ = squares_scene(tmp_path, size=150)
    settings = {"probabilities": "uint8", **settings}
    one = predict_experiment(tmp_path, img, predict={**settings, "merge_workers": 1})
    save_untrained(one, registry, img)
    out = predict.run(one, registry)
    probs = out.with_name(f"{out.stem}_probabilities{out.suffix}")
    single = pixels(out), pixels(probs)
    out.unlink()
    probs.unlink()
    for i in range(n):
        predict.run(one, registry, shard=f"{i}/{n}")
    return img, out, probs, single


@pytest.mark.parametrize("workers, blend", [(1, True), (3, False), (4, True)])
def test_merge_in_threads_equals_the_single_run(tmp_path, registry, workers, blend):
    img, out, probs, single = sharded(tmp_path, registry, blend=blend)
    exp = predict_experiment(tmp_path, img, predict={"probabilities": "uint8", "blend": blend,
                                                     "merge_workers": workers})
    predict.run(exp, registry, merge=True)
    assert np.array_equal(pixels(out), single[0])
    assert np.array_equal(pixels(probs), single[1])
    assert not list(out.parent.glob("*.part-*"))  # the shards are gone once published


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_shard_stops_the_merge_with_nothing_written(tmp_path, registry, damage):
    img, out, probs, _ = sharded(tmp_path, registry)
    log = sorted(out.parent.glob("*.part-*.blocks"))[1]
    before = sorted(out.parent.iterdir())
    if damage == "flip":
        flip_bit(log, log.stat().st_size // 2)
    else:
        truncate(log, 0.5)
    done = deepseg("merge", tmp_path / "exp.yaml", "--workers", "2", test_models=True)
    assert_one_line_error(done, str(log), "damaged block", "rerun that shard's prediction")
    assert "from 3 shard(s) in 2 thread(s)" in done.stdout  # --workers 2
    assert sorted(out.parent.iterdir()) == before  # no output, nothing half-written
    assert not out.exists()


def test_merge_workers_must_be_positive(tmp_path):
    img, _, _ = squares_scene(tmp_path, size=64)
    with pytest.raises(DeepSegError, match="predict.merge_workers"):
        predict_experiment(tmp_path, img, predict={"merge_workers": 0})


def test_workers_of_the_command_must_be_positive(tmp_path):
    for command in (["merge"], ["predict", "--merge"]):
        done = invoke(*command, tmp_path / "exp.yaml", "--workers", "0")
        assert done.exit_code == 2 and "'--workers': 0 is not in the range" in done.output

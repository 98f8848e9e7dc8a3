"""Several reader threads: their own file handles, tiles in order, the same output bit for bit."""

import random
import threading
import time

import numpy as np
import pytest
import rasterio

from deepseg_core.contracts.raster import Window
from deepseg_core.errors import DeepSegError
from deepseg_core.inference.pipeline import Flow, run_pipeline
from deepseg_core.inference.readers import TileReader, read_in_order
from deepseg_core.models.folder import TrainedModel
from deepseg_core.stages import predict
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, write_raster


def test_reads_finishing_out_of_order_are_delivered_in_order():
    windows = list(range(40))
    threads = set()
    rng = random.Random(0)
    delays = [rng.uniform(0, 0.01) for _ in windows]

    def read(i):
        threads.add(threading.get_ident())
        time.sleep(delays[i])  # later windows often finish first
        return i * 10

    got = list(read_in_order(read, windows, 4, threading.Event()))
    assert got == [(i, i * 10) for i in windows]
    assert len(threads) > 1


def test_a_failing_read_fails_the_run_with_its_message():
    def read(window):
        if window.row_off == 64:
            raise DeepSegError("scene.tif: cannot read window (64, 0)")
        return np.zeros((32, 32, 1), np.float32), np.ones((32, 32), bool)

    windows = [Window(r, 0, 32, 32) for r in range(0, 320, 32)]
    done = []
    with pytest.raises(DeepSegError, match=r"scene.tif: cannot read window \(64, 0\)"):
        run_pipeline(read, windows, lambda x: [None] * len(x), done.append,
                     Flow(2, 2, readers=3))
    assert [job.index for job in done] == list(range(len(done))) and len(done) <= 2


def test_every_reader_thread_has_its_own_stack(tmp_path, registry):
    data = np.random.default_rng(2).integers(0, 255, (3, 96, 96)).astype("uint8")
    image = write_raster(tmp_path / "img.tif", data)
    exp = predict_experiment(tmp_path, image)
    _, info = save_untrained(exp, registry, image)
    trained = TrainedModel(info, exp.outdir / "model" / "best.keras")
    plan = predict.plan.Plan(predict.plan.Settings.of(exp), registry, trained)
    read = TileReader(plan.stack, info.stats)
    stacks, barrier = {}, threading.Barrier(3)

    def work():
        barrier.wait()
        got, valid = read(Window(16, 8, 32, 32))
        stacks[threading.get_ident()] = read._local.stack
        assert valid.all() and got.shape == (32, 32, 3)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert len({id(s) for s in stacks.values()}) == 3 and plan.stack in stacks.values()
    read.close()
    plan.close()


@pytest.mark.parametrize("readers", [1, 4])
def test_outputs_are_identical_whatever_the_reader_count(tmp_path, registry, readers):
    data = np.random.default_rng(3).integers(0, 255, (3, 130, 117)).astype("uint8")
    data[:, :40, :50] = 0  # a nodata corner: skipped tiles among read ones
    image = write_raster(tmp_path / "img.tif", data, nodata=0)
    for sub in ("ref", "n"):
        (tmp_path / sub).mkdir()
    ref = predict_experiment(tmp_path / "ref", image, predict={"readers": 1, "batch_size": 3,
                                                               "probabilities": "float32"})
    save_untrained(ref, registry, image)
    ref_out = predict.run(ref, registry)
    exp = predict_experiment(tmp_path / "n", image, predict={"readers": readers,
                                                             "batch_size": 3,
                                                             "probabilities": "float32"})
    save_untrained(exp, registry, image)
    out = predict.run(exp, registry)
    with rasterio.open(ref_out) as x, rasterio.open(out) as y:
        assert np.array_equal(x.read(), y.read()) and (x.read(1) == 255).any()
    ref_p, out_p = (p.with_name(f"{p.stem}_probabilities{p.suffix}") for p in (ref_out, out))
    with rasterio.open(ref_p) as x, rasterio.open(out_p) as y:
        assert np.array_equal(x.read(), y.read(), equal_nan=True)


@pytest.mark.parametrize("start", [0, 5, 6, 7, 11])
def test_a_resumed_run_gives_the_model_the_batches_of_an_uninterrupted_run(start):
    """Float kernels may round differently for another batch: a run resumed at ``start``
    must stack the same tiles together as a run from 0, and pass on only tiles from ``start``."""
    windows = [Window(r, 0, 8, 8) for r in range(0, 8 * 12, 8)]

    def read(window):
        valid = np.full((8, 8), window.row_off != 24)  # tile 3: all nodata
        return np.full((8, 8, 1), window.row_off, np.float32), valid

    def run(first):
        batches, done = [], []

        def predict(images):
            batches.append(tuple(int(im[0, 0, 0]) // 8 for im in images))
            return list(batches[-1])

        run_pipeline(read, windows, predict, done.append, Flow(3, 2, readers=2), start=first)
        return batches, done

    full, _ = run(0)
    batches, done = run(start)
    assert batches == full[start // 3:]
    assert [job.index for job in done] == list(range(start, len(windows)))
    assert [job.result for job in done if job.index != 3] == [i for i in range(start, 12)
                                                              if i != 3]

"""Crossval stage end to end: folds, reports, error maps that agree with the confusion counts."""

import json

import numpy as np
import pytest
import rasterio

from deepseg_core.config import load_experiment
from deepseg_core.errors import DeepSegError
from deepseg_core.geo.tiling import tile_cores
from deepseg_core.stages import crossval, dataprep
from deepseg_core.store import Store
from deepseg_core.store.identity import store_path
from tests.support.synthetic import squares_scene, write_experiment

# under pytest-xdist, one worker runs this module: its fixtures are made once
pytestmark = pytest.mark.xdist_group("crossval")


@pytest.fixture(scope="module")
def result(tmp_path_factory, registry):
    folder = tmp_path_factory.mktemp("cv")
    img, gpkg, _ = squares_scene(folder, size=128, nsquares=20)
    exp = load_experiment(write_experiment(folder, img, gpkg, epochs=4, folds=2,
                                           crossval={"folds": [0]}))
    dataprep.run(exp, registry)
    crossval.run(exp, registry)
    # a later call runs the other fold and merges both
    exp1 = load_experiment(write_experiment(folder, img, gpkg, epochs=4, folds=2,
                                            crossval={"folds": [1]}))
    table = crossval.run(exp1, registry)
    return exp1, table


def test_every_report_file_exists(result):
    exp, table = result
    root = exp.outdir / "crossval"
    for fold in (0, 1):
        d = root / f"fold{fold}"
        for name in (f"fold{fold}_pycm.html", f"fold{fold}_pycm.csv", f"fold{fold}_pycm.pycm",
                     f"fold{fold}_pycm_confusion.png", f"fold{fold}_errors.tif",
                     "metrics.json", "model/best.keras", "logs/curves.png"):
            assert (d / name).exists(), name
    for name in ("all_pycm.html", "all_pycm.csv", "all_pycm_confusion.png", "folds.csv",
                 "folds.md"):
        assert (root / name).exists(), name
    assert "square" in (root / "all_pycm.html").read_text()
    assert table["overall_accuracy"]["mean"] > 0.5 and "F1[square]" in table


def test_cores_count_each_pixel_once_and_error_maps_match_the_counts(result):
    exp, _ = result
    root = exp.outdir / "crossval"
    with Store(store_path(exp)) as store:
        tiles, attrs = store.tiles, store.attrs
        from deepseg_core.builtin.tiler import grid_tiles

        all_windows = grid_tiles(attrs["width"], attrs["height"], 32, 8)
        cores = dict(zip([(w.row_off, w.col_off) for w in all_windows],
                         tile_cores(all_windows, attrs["width"], attrs["height"])))
        for fold in (0, 1):
            state = json.loads((root / f"fold{fold}" / "metrics.json").read_text())
            counts = np.asarray(state["states"]["pycm"]["counts"])
            # expected: labelled valid pixels in the cores of the fold's tiles, once each
            covered = np.zeros((attrs["height"], attrs["width"]), bool)
            truth_total = 0
            for i in np.flatnonzero(tiles["fold"] == fold):
                key = (int(tiles["row"][i]), int(tiles["col"][i]))
                core = cores[key]
                label = store.labels[i]
                rows = slice(core.row_off - key[0], core.row_off - key[0] + core.height)
                cols = slice(core.col_off - key[1], core.col_off - key[1] + core.width)
                assert not covered[core.slices].any()
                covered[core.slices] = True
                truth_total += int((label[rows, cols] != 255).sum())
            assert counts.sum() == truth_total
            with rasterio.open(root / f"fold{fold}" / f"fold{fold}_errors.tif") as src:
                codes = src.read(1)
                assert src.colormap(1)[1][:3] != src.colormap(1)[2][:3]
            tp, fp, tn, fn = (int((codes == c).sum()) for c in (1, 2, 3, 4))
            assert (tp, fp, tn, fn) == (counts[1, 1], counts[0, 1], counts[0, 0], counts[1, 0])


def test_unknown_fold_is_rejected(result, registry):
    exp, _ = result
    bad = exp.model_copy(update={"crossval": exp.crossval.model_copy(update={"folds": [7]})})
    bad._source = exp.source
    with pytest.raises(DeepSegError, match=r"crossval.folds: \[7\] hold no tiles"):
        crossval.run(bad, registry)


def test_instance_crossval_reports_matching_and_pixel_statistics(tmp_path, registry):
    img, gpkg, _ = squares_scene(tmp_path, size=128, nsquares=14, seed=2)
    exp = load_experiment(write_experiment(
        tmp_path, img, gpkg, epochs=1, folds=2, segmentation_type="instance",
        model="tinyblobs", tilesize=64, overlap=16, training={"steps_per_epoch": 1}))
    dataprep.run(exp, registry)
    table = crossval.run(exp, registry)
    root = exp.outdir / "crossval"
    assert (root / "all_instances_instances.csv").exists()
    assert (root / "all_pycm.html").exists()
    # touching squares are one blob for the model but two crowns in the labels: F1 < 1
    assert table["F1"]["mean"] > 0.5 and table["overall_accuracy"]["mean"] > 0.95


def test_each_object_is_scored_by_one_held_out_tile():
    from deepseg_core.contracts.model import Instance
    from deepseg_core.stages.crossval.tile_eval import owned_instances

    scene = np.zeros((40, 64), np.int32)
    scene[10:20, 28:36] = 1  # straddles the overlap of the two tiles below
    scene[5:9, 2:6] = 2      # left tile only
    tiles = [(0, slice(0, 32)), (24, slice(32 - 24, 40))]  # col origin, core cols in tile
    counted = []
    for col0, core_cols in tiles:
        truth = scene[:, col0:col0 + 40]
        ids = [i for i in np.unique(truth) if i]
        preds = []
        for i in ids:
            r, c = np.nonzero(truth == i)
            preds.append(Instance(1, 0.9, truth == i, (r.min(), c.min(), r.max() + 1, c.max() + 1)))
        keep, kept_preds = owned_instances(truth, preds, slice(0, 40), core_cols)
        counted += [int(i) for i in np.unique(keep) if i]
        assert len(kept_preds) == len([i for i in np.unique(keep) if i])
    assert sorted(counted) == [1, 2]

"""The built-in semantic metric "pycm": counts, statistics, reports, fold merging, registry."""

import json
import math

import numpy as np
import pytest

from deepseg_core.errors import DeepSegError
from deepseg_core.metrics.base import Metric
from deepseg_core.metrics.confusion import confusion_counts
from deepseg_core.metrics.pycm_report import PycmMetric
from deepseg_core.metrics.summary import fold_statistics, fold_summary
from deepseg_core.plugins.manager import load_plugins

NAMES = ["Forest", "Grass", "Urban"]
IGNORE = 255


def random_tile(rng, shape=(40, 56), nclasses=3, ignored=0.1):
    truth = rng.integers(0, nclasses, shape)
    truth[rng.random(shape) < ignored] = IGNORE
    agree = rng.random(shape) < 0.7  # mostly right, so the matrix is not uniform
    prediction = np.where(agree & (truth != IGNORE), truth, rng.integers(0, nclasses, shape))
    return truth.astype(np.uint16), prediction.astype(np.uint8)


def test_real_accuracy_assessment_points(shared_data):
    import geopandas as gpd

    points = gpd.read_file(shared_data / "rsgislib" / "classification" / "accuracy"
                           / "acc_ass_smpls_test_vals.geojson")
    assert len(points) == 525
    names = sorted(set(points["ref_smpls"]) | set(points["img_smpls"]))
    assert names == ["forest", "grass", "other", "urban"]
    index = {n: i for i, n in enumerate(names)}
    metric = PycmMetric(names, ignore_label=None)
    metric.update(points["ref_smpls"].map(index).to_numpy(),
                  points["img_smpls"].map(index).to_numpy())
    summary = metric.summary()
    assert metric.counts.sum() == 525
    assert round(summary["overall_accuracy"], 4) == 0.8476
    assert round(summary["kappa"], 4) == 0.7732
    expected = {"forest": 0.8143, "grass": 0.8696, "other": 0.7407, "urban": 0.9211}
    assert {n: round(summary[f"F1[{n}]"], 4) for n in names} == expected
    assert summary["mean_F1"] == pytest.approx(np.mean(list(expected.values())), abs=1e-4)


def test_tile_by_tile_equals_one_pass_and_ignore_is_excluded():
    rng = np.random.default_rng(0)
    tiles = [random_tile(rng) for _ in range(5)]
    tiled = PycmMetric(NAMES, IGNORE)
    for truth, prediction in tiles:
        tiled.update(truth, prediction)
    truth = np.concatenate([t for t, _ in tiles])
    prediction = np.concatenate([p for _, p in tiles])
    whole = PycmMetric(NAMES, IGNORE)
    whole.update(truth, prediction)
    np.testing.assert_array_equal(tiled.counts, whole.counts)
    keep = truth != IGNORE
    assert tiled.counts.sum() == keep.sum() < truth.size
    for i in range(3):  # counts written out the slow way
        for j in range(3):
            assert tiled.counts[i, j] == np.sum((truth == i) & (prediction == j))


def test_valid_mask_and_bad_classes():
    truth = np.array([[0, 1], [2, 1]])
    prediction = np.array([[0, 2], [2, 1]])
    counts = confusion_counts(truth, prediction, 3, valid=np.array([[True, False], [True, True]]))
    assert counts.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    with pytest.raises(DeepSegError, match="prediction holds class 3, outside 0..2"):
        confusion_counts(truth, prediction + 1, 3)
    with pytest.raises(DeepSegError, match=r"truth holds class 7.*ignore_label is 255"):
        confusion_counts(np.full((2, 2), 7), prediction, 3, ignore_label=255)
    with pytest.raises(DeepSegError, match="differ in shape"):
        confusion_counts(truth, prediction[:1], 3)


def test_statistics_by_hand_and_empty_class_is_nan():
    metric = PycmMetric(["A", "B", "C"])
    truth = np.array([0] * 6 + [1] * 5)
    prediction = np.array([0] * 5 + [1] + [0] * 2 + [1] * 3)
    metric.update(truth, prediction)
    s = metric.summary()
    # A: TP 5, FP 2, FN 1 -> precision 5/7, recall 5/6, IoU 5/8; C never occurs -> nan
    assert s["precision[A]"] == pytest.approx(5 / 7)
    assert s["recall[A]"] == pytest.approx(5 / 6)
    assert s["IoU[A]"] == pytest.approx(5 / 8)
    assert s["overall_accuracy"] == pytest.approx(8 / 11)
    assert math.isnan(s["F1[C]"]) and math.isnan(s["IoU[C]"])
    assert s["mean_IoU"] == pytest.approx((5 / 8 + 3 / 6) / 2)


def test_reports_name_the_classes(tmp_path):
    rng = np.random.default_rng(1)
    metric = PycmMetric(NAMES + ["Water"], IGNORE)  # Water never occurs
    metric.update(*random_tile(rng))
    paths = metric.write_report(tmp_path / "fold1", "semantic")
    suffixes = sorted(p.name for p in paths)
    assert suffixes == ["semantic.csv", "semantic.html", "semantic.pycm",
                        "semantic_confusion.png", "semantic_matrix.csv"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    for path in paths:
        if path.suffix != ".png":
            text = path.read_text(errors="replace")
            assert all(name in text for name in NAMES + ["Water"]), path.name
    assert paths[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_merge_of_fold_states_equals_accumulating_both():
    rng = np.random.default_rng(2)
    folds = [[random_tile(rng) for _ in range(2)] for _ in range(2)]
    both, states = PycmMetric(NAMES, IGNORE), []
    for tiles in folds:
        fold = PycmMetric(NAMES, IGNORE)
        for tile in tiles:
            fold.update(*tile)
            both.update(*tile)
        states.append(json.loads(json.dumps(fold.state())))  # states travel as JSON
    merged = PycmMetric.merge(states)
    np.testing.assert_array_equal(merged.counts, both.counts)
    assert merged.summary() == both.summary()
    with pytest.raises(DeepSegError, match="different classes"):
        PycmMetric.merge([states[0], PycmMetric(["a", "b"]).state()])
    with pytest.raises(DeepSegError, match="'instances' metric state into a 'pycm'"):
        PycmMetric.merge([{"kind": "instances"}])


def test_fold_summary_table(tmp_path):
    summaries = {1: {"overall_accuracy": 0.8, "F1[Forest]": 0.5},
                 2: {"overall_accuracy": 0.9, "F1[Forest]": float("nan")}}
    table = fold_statistics(summaries)
    assert table["overall_accuracy"]["mean"] == pytest.approx(0.85)
    assert table["overall_accuracy"]["std"] == pytest.approx(0.05)
    assert table["F1[Forest]"]["mean"] == 0.5 and table["F1[Forest]"]["std"] == 0
    csv_path, md_path = fold_summary(summaries, tmp_path)
    assert "overall_accuracy,0.8500,0.0500,0.8000,0.9000" in csv_path.read_text()
    assert "| overall_accuracy | 0.8500 ± 0.0500 | 0.8000 | 0.9000 |" in md_path.read_text()


def test_registry_has_the_builtin_metrics():
    registry = load_plugins().registry
    assert {"pycm", "instances"} <= set(registry.names("metric"))
    pycm_metric = registry.get("metric", "pycm")(NAMES, IGNORE)
    instance_metric = registry.get("metric", "instances")(["background", "tree"], None)
    assert isinstance(pycm_metric, Metric) and isinstance(instance_metric, Metric)
    assert (pycm_metric.applies_to, instance_metric.applies_to) == ("semantic", "instance")


def test_plugin_module_imports_no_report_library():
    import subprocess
    import sys

    code = ("import sys, deepseg_core.builtin.metrics; "
            "print(any(m.split('.')[0] in ('pycm', 'matplotlib') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

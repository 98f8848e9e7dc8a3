"""The built-in instance metrics: one-to-one matching, TP/FP/FN and COCO-style mask AP."""

import json
import math

import numpy as np
import pytest

from deepseg_core.contracts.model import Instance
from deepseg_core.errors import DeepSegError
from deepseg_core.metrics.instances import ClassAwareInstanceMetric, InstanceMetric
from deepseg_core.metrics.matching import average_precision, greedy_match

SHAPE = (40, 40)
NAMES = ["background", "tree", "building"]


def box(r0, c0, r1, c1):
    mask = np.zeros(SHAPE, bool)
    mask[r0:r1, c0:c1] = True
    return mask


def instance(mask, score=0.9, class_id=1):
    rows, cols = np.nonzero(mask)
    return Instance(class_id, score, mask, (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1))


def truth_of(*masks):
    ids = np.zeros(SHAPE, np.uint32)
    for i, mask in enumerate(masks, start=1):
        ids[mask] = i
    return ids


def counts(metric):
    s = metric.summary()
    return int(s["TP"]), int(s["FP"]), int(s["FN"])


A, B = box(0, 0, 10, 10), box(0, 12, 10, 16)  # 100 and 40 pixels
CASES = {
    "exact match": ([A], [A], (1, 0, 0)),
    "shifted 2 columns, IoU 80/120": ([A], [box(0, 2, 10, 12)], (1, 0, 0)),
    "shifted 4 columns, IoU 60/140": ([A], [box(0, 4, 10, 14)], (0, 1, 1)),
    "split 60/40: IoU 0.6 and 0.4": ([A], [box(0, 0, 10, 6), box(0, 6, 10, 10)], (1, 1, 0)),
    "merged: IoU 100/160 and 40/160": ([A, B], [box(0, 0, 10, 16)], (1, 0, 1)),
    "merged equal halves: IoU < 0.5": ([box(0, 0, 10, 10), box(0, 11, 10, 21)],
                                       [box(0, 0, 10, 21)], (0, 1, 2)),
    "missed": ([A, box(20, 20, 30, 30)], [A], (1, 0, 1)),
    "false alarm on background": ([A], [A, box(30, 30, 35, 35)], (1, 1, 0)),
}


@pytest.mark.parametrize("name", CASES)
def test_matching_cases(name):
    truth_masks, pred_masks, expected = CASES[name]
    metric = InstanceMetric(NAMES)
    scores = np.linspace(0.9, 0.5, len(pred_masks))
    metric.update(truth_of(*truth_masks), [instance(m, s) for m, s in zip(pred_masks, scores)])
    assert counts(metric) == expected
    tp, fp, fn = expected
    s = metric.summary()
    assert s["precision"] == pytest.approx(tp / (tp + fp))
    assert s["recall"] == pytest.approx(tp / (tp + fn))
    assert s["F1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_greedy_matching_follows_the_score_not_the_iou():
    ious = np.array([[0.6], [1.0]])  # the better mask has the lower score
    assert greedy_match(ious, [0.9, 0.5], 0.5).tolist() == [True, False]
    assert greedy_match(ious, [0.9, 0.5], 0.65).tolist() == [False, True]


def test_average_precision_by_hand():
    # 3 truth objects; predictions by descending score are TP FP TP FP TP:
    # precision 1, 1/2, 2/3, 1/2, 3/5 at recall 1/3, 1/3, 2/3, 2/3, 1.
    # Envelope (best precision at any higher recall): 1 up to recall 1/3 (34 of the 101
    # recall points 0, .01, .., .33), 2/3 up to 2/3 (33 points .34..66), 3/5 up to 1 (34 points).
    expected = (34 * 1 + 33 * 2 / 3 + 34 * 3 / 5) / 101  # 0.756435...
    scores, tp = [0.9, 0.8, 0.7, 0.6, 0.5], [True, False, True, False, True]
    assert average_precision(scores, tp, 3) == pytest.approx(expected)
    assert average_precision([0.5, 0.9], [True, False], 1) == pytest.approx(0.5)  # FP first
    assert average_precision([], [], 2) == 0
    assert math.isnan(average_precision([0.3], [False], 0))


def ap_scene():
    """Two tiles holding the by-hand AP case: three objects, five exact or background masks."""
    t1 = truth_of(box(0, 0, 10, 10))
    p1 = [instance(box(0, 0, 10, 10), 0.9), instance(box(30, 30, 36, 36), 0.6)]
    t2 = truth_of(box(0, 0, 8, 8), box(20, 20, 30, 30))
    p2 = [instance(box(12, 0, 16, 4), 0.8), instance(box(20, 20, 30, 30), 0.7),
          instance(box(0, 0, 8, 8), 0.5)]
    return [(t1, p1), (t2, p2)]


def test_ap_accumulates_over_tiles_with_one_global_ranking():
    metric = InstanceMetric(NAMES)
    for truth, predictions in ap_scene():
        metric.update(truth, predictions)
    s = metric.summary()
    expected = (34 + 33 * 2 / 3 + 34 * 3 / 5) / 101
    assert s["AP50"] == pytest.approx(expected)
    assert s["AP"] == pytest.approx(expected)  # exact masks match at every IoU threshold
    assert counts(metric) == (3, 2, 0)


def test_ap_over_iou_thresholds():
    # one object, one prediction of IoU 72/100: a hit at .50 .55 .60 .65 .70, a miss above
    metric = InstanceMetric(NAMES)
    metric.update(truth_of(box(0, 0, 10, 10)), [instance(box(0, 0, 9, 8))])
    s = metric.summary()
    assert (s["AP50"], s["AP75"], s["AP"]) == (1.0, 0.0, 0.5)


def test_merge_of_fold_states_equals_accumulating_both():
    (t1, p1), (t2, p2) = ap_scene()
    both, first, second = InstanceMetric(NAMES), InstanceMetric(NAMES), InstanceMetric(NAMES)
    for truth, predictions, fold in ((t1, p1, first), (t2, p2, second)):
        fold.update(truth, predictions)
        both.update(truth, predictions)
    states = [json.loads(json.dumps(m.state())) for m in (first, second)]
    assert InstanceMetric.merge(states).summary() == both.summary()
    with pytest.raises(DeepSegError, match="'instances' metric state into a 'instances_per_class'"):
        ClassAwareInstanceMetric.merge(states)


def test_id_array_prediction_and_valid_mask():
    truth = truth_of(box(0, 0, 10, 10), box(20, 20, 30, 30))
    pred_ids = truth_of(box(0, 0, 10, 10), box(20, 20, 30, 30), box(35, 0, 40, 5))
    metric = InstanceMetric(NAMES)
    metric.update(truth, pred_ids, scores={1: 0.9, 2: 0.8, 3: 0.7})
    assert counts(metric) == (2, 1, 0)
    valid = np.ones(SHAPE, bool)
    valid[18:, :] = False  # hides truth 2 and prediction 3
    masked = InstanceMetric(NAMES)
    masked.update(truth, pred_ids, valid=valid)
    assert counts(masked) == (1, 0, 0)


def test_class_aware_matching():
    truth = truth_of(box(0, 0, 10, 10), box(20, 20, 30, 30))
    predictions = [instance(box(0, 0, 10, 10), 0.9, class_id=2),
                   instance(box(20, 20, 30, 30), 0.8, class_id=2)]
    agnostic, aware = InstanceMetric(NAMES), ClassAwareInstanceMetric(NAMES)
    for metric in (agnostic, aware):
        metric.update(truth, predictions, truth_classes={"1": 1, "2": 2})  # JSON keys
    assert counts(agnostic) == (2, 0, 0)
    assert counts(aware) == (1, 1, 1)
    s = aware.summary()
    # building: its only object is found, but after a building prediction on the tree (FP first)
    assert (s["AP50[tree]"], s["AP50[building]"], s["AP50"]) == (0.0, 0.5, 0.25)
    with pytest.raises(DeepSegError, match="needs the class of every object"):
        aware.update(truth, predictions)


def test_report_files(tmp_path):
    metric = InstanceMetric(NAMES)
    for truth, predictions in ap_scene():
        metric.update(truth, predictions)
    paths = metric.write_report(tmp_path, "fold2")
    assert [p.name for p in paths] == ["fold2_instances.csv", "fold2_instances.txt", "fold2_pr.png"]
    table = paths[0].read_text().splitlines()
    assert table[0] == "group,iou_threshold,TP,FP,FN,precision,recall,F1,AP"
    assert len(table) == 11
    assert "AP50: 0.7564" in paths[1].read_text()
    assert paths[2].read_bytes()[:4] == b"\x89PNG"

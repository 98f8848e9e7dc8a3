"""Error maps: codes, colour tables and legends agree with the confusion matrix."""

import numpy as np
import pytest

from deepseg_core.errors import DeepSegError
from deepseg_core.metrics.confusion import confusion_counts
from deepseg_core.metrics.errormap import (
    binary_error_map,
    error_counts,
    error_map,
    multiclass_error_map,
)

IGNORE = 255


def test_binary_codes_by_hand():
    truth = np.array([[1, 1, 0, 0, IGNORE]])
    prediction = np.array([[1, 0, 1, 0, 1]])
    codes, colours, names = binary_error_map(truth, prediction, ["other", "Building"], IGNORE)
    assert codes.dtype == np.uint8
    assert codes.tolist() == [[1, 4, 2, 3, 0]]  # TP FN FP TN nodata
    assert names[1:] == ("true positive (Building)", "false positive (Building)",
                         "true negative (Building)", "false negative (Building)")
    assert set(colours) == {0, 1, 2, 3, 4} and colours[0][3] == 0
    flipped, _, _ = binary_error_map(truth, prediction, ["other", "Building"], IGNORE, positive=0)
    assert flipped.tolist() == [[3, 2, 4, 1, 0]]


def test_binary_counts_equal_the_confusion_matrix():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, (64, 48)).astype(np.uint16)
    truth[rng.random(truth.shape) < 0.1] = IGNORE
    prediction = rng.integers(0, 2, truth.shape)
    valid = rng.random(truth.shape) > 0.05
    codes, _, _ = error_map(truth, prediction, ["no", "yes"], IGNORE, valid=valid)
    cm = confusion_counts(truth, prediction, 2, IGNORE, valid)
    counts = error_counts(codes, 2)
    tp, fp, tn, fn = counts[1:]
    assert (tp, fp, tn, fn) == (cm[1, 1], cm[0, 1], cm[0, 0], cm[1, 0])
    assert counts[0] == np.sum((truth == IGNORE) | ~valid)


def test_multiclass_counts_equal_the_confusion_matrix():
    rng = np.random.default_rng(4)
    names = ["Forest", "Grass", "Urban", "Water"]
    truth = rng.integers(0, 4, (50, 70)).astype(np.uint16)
    truth[:3] = IGNORE
    prediction = np.where(rng.random(truth.shape) < 0.6, truth % 4, rng.integers(0, 4, truth.shape))
    codes, colours, legend = multiclass_error_map(truth, prediction, names, IGNORE)
    assert codes.dtype == np.uint8
    counts = error_counts(codes, 4)
    np.testing.assert_array_equal(counts[1:].reshape(4, 4),
                                  confusion_counts(truth, prediction, 4, IGNORE))
    assert counts[0] == 3 * 70
    assert len(legend) == len(colours) == 17
    assert legend[0] == "nodata"
    assert legend[1 + 0 * 4 + 0] == "Forest correct"
    assert legend[1 + 0 * 4 + 1] == "Forest as Grass"
    assert legend[1 + 3 * 4 + 2] == "Water as Urban"
    assert all(len(c) == 4 and all(0 <= v <= 255 for v in c) for c in colours.values())
    assert len({colours[1 + i * 4 + i] for i in range(4)}) == 4  # correct classes differ


def test_code_dtype_grows_beyond_15_classes():
    for n, dtype in ((15, np.uint8), (16, np.uint16)):
        last = 1 + (n - 1) * n + (n - 1)  # 225 for 15 classes, 256 for 16
        names = [f"c{i}" for i in range(n)]
        codes, colours, legend = error_map(np.full((1, 1), n - 1), np.full((1, 1), n - 1), names)
        assert codes.dtype == dtype and codes[0, 0] == last
        assert max(colours) == last == len(legend) - 1


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(DeepSegError, match="prediction holds class 5"):
        error_map(np.zeros((2, 2), int), np.full((2, 2), 5), ["a", "b", "c"])
    with pytest.raises(DeepSegError, match="positive 0 or 1"):
        binary_error_map(np.zeros((2, 2), int), np.zeros((2, 2), int), ["a", "b"], positive=2)
    with pytest.raises(DeepSegError, match="2 colours given for 3 classes"):
        multiclass_error_map(np.zeros((2, 2), int), np.zeros((2, 2), int), ["a", "b", "c"],
                             colours=[(1, 2, 3), (4, 5, 6)])

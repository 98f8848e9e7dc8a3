"""Tests of the resunet model plugin: build, validation, registry, save/load, learning."""

import re

import pytest
from deepseg_resunet.plugin import ResUNet

from deepseg_core.testing import conformance

TINY = {"filters": 4, "depth": 2}


def expected_params(nbands, nclasses, filters, depth):
    """Parameter count of the ResUNet by hand: bias-free convs, 4 weights per BN channel."""
    def block(cin, f, projection=True):  # BN-conv3x3-BN-conv3x3 (+ 1x1 conv and BN shortcut)
        return 4 * cin + 9 * cin * f + 4 * f + 9 * f * f + (cin * f + 4 * f if projection else 0)

    widths = [filters * 2**level for level in range(depth + 1)]
    total = 9 * nbands * widths[0] + block(widths[0], widths[0], projection=False)
    total += sum(block(cin, f) for cin, f in zip(widths[:-1], widths[1:]))  # strided encoder
    total += sum(block(f + 2 * f, f) for f in widths[:-1])  # decoder on upsampled + skip
    return total + 4 * widths[0] + widths[0] * nclasses + nclasses  # head: BN, 1x1 conv


def test_default_parameter_count():
    model = ResUNet().build(3, 2, 256, {})
    assert model.count_params() == expected_params(3, 2, 32, 4) == 8_307_746
    assert model.output_shape == (None, None, None, 2)


@pytest.mark.parametrize("nbands,nclasses,filters,depth", [(1, 2, 4, 1), (7, 5, 8, 3)])
def test_small_parameter_counts(nbands, nclasses, filters, depth):
    model = ResUNet().build(nbands, nclasses, 32, {"filters": filters, "depth": depth})
    assert model.count_params() == expected_params(nbands, nclasses, filters, depth)


def test_dropout_adds_a_layer_but_no_weights():
    plain = ResUNet().build(3, 2, 32, TINY)
    dropped = ResUNet().build(3, 2, 32, {**TINY, "dropout": 0.5})
    assert dropped.get_layer("bridge_dropout").rate == 0.5
    assert dropped.count_params() == plain.count_params()


def test_forward_pass_gives_probabilities_on_any_divisible_tile():
    conformance.check_forward(ResUNet(), TINY)


def test_softmax_is_float32_under_mixed_precision():
    conformance.check_mixed_precision(ResUNet(), TINY)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # keras' saver
def test_save_load_round_trip_predicts_the_same(tmp_path):
    conformance.check_save_load(ResUNet(), TINY, tmp_path)


def test_registered_through_the_plugin_manager():
    conformance.check_registered("resunet", ResUNet)


def test_plugin_import_leaves_keras_unloaded():
    conformance.check_lazy_import("deepseg_resunet.plugin")


@pytest.mark.parametrize("params,nclasses,tilesize,message", [
    ({}, 2, 40, r"tilesize 40 .* divisible by 2\^4 = 16"),
    ({"filtres": 32}, 2, 64, "filtres unknown; expected some of: depth, dropout"),
    ({"filters": 0}, 2, 64, "filters must be a whole number >= 1, not 0"),
    ({"depth": "4"}, 2, 64, "depth must be a whole number >= 1, not '4'"),
    ({"dropout": 1.0}, 2, 64, r"dropout must be a number in \[0, 1\), not 1.0"),
    ({}, 1, 64, "at least 2 classes"),
])
def test_bad_settings_are_rejected(params, nclasses, tilesize, message):
    assert re.search(message, conformance.check_rejects(ResUNet(), params, nclasses, tilesize))
    ResUNet().validate(3, 2, 40, {"depth": 3})  # 40 px is fine at depth 3


def test_tiny_model_learns_bright_squares():
    miou = conformance.check_learns_squares(ResUNet(), {"filters": 8, "depth": 2})
    assert miou >= 0.9, miou

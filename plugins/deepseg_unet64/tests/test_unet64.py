"""Tests of the unet64 model plugin: build, validation, registry, save/load, learning."""

import re

import pytest
from deepseg_unet64.plugin import UNet64

from deepseg_core.testing import conformance

TINY = {"filters": 4, "depth": 2}


def expected_params(nbands, nclasses, filters, depth):
    """Parameter count of the U-Net by hand: bias-free convs, 4 weights per BN channel."""
    def block(cin, f):  # two 3x3 convs without bias, each with batch normalization
        return 9 * cin * f + 9 * f * f + 2 * 4 * f

    widths = [filters * 2**level for level in range(depth + 1)]
    total = sum(block(cin, f) for cin, f in zip([nbands] + widths[:-1], widths))
    for level in range(depth):  # 2x2 transposed conv with bias, then a block on the concatenation
        f = widths[level]
        total += 4 * 2 * f * f + f + block(2 * f, f)
    return total + widths[0] * nclasses + nclasses


def test_full_size_parameter_count():
    model = UNet64().build(3, 2, 256, {})
    assert model.count_params() == expected_params(3, 2, 64, 4) == 31_049_474
    assert model.output_shape == (None, None, None, 2)


@pytest.mark.parametrize("nbands,nclasses,filters,depth", [(1, 2, 4, 1), (7, 5, 8, 3)])
def test_small_parameter_counts(nbands, nclasses, filters, depth):
    model = UNet64().build(nbands, nclasses, 32, {"filters": filters, "depth": depth})
    assert model.count_params() == expected_params(nbands, nclasses, filters, depth)


def test_dropout_adds_a_layer_but_no_weights():
    plain = UNet64().build(3, 2, 32, TINY)
    dropped = UNet64().build(3, 2, 32, {**TINY, "dropout": 0.5})
    assert dropped.get_layer("bottom_dropout").rate == 0.5
    assert dropped.count_params() == plain.count_params()


def test_forward_pass_gives_probabilities_on_any_divisible_tile():
    conformance.check_forward(UNet64(), TINY)


def test_softmax_is_float32_under_mixed_precision():
    conformance.check_mixed_precision(UNet64(), TINY)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # keras' saver
def test_save_load_round_trip_predicts_the_same(tmp_path):
    conformance.check_save_load(UNet64(), TINY, tmp_path)


def test_registered_through_the_plugin_manager():
    conformance.check_registered("unet64", UNet64)


def test_plugin_import_leaves_keras_unloaded():
    conformance.check_lazy_import("deepseg_unet64.plugin")


@pytest.mark.parametrize("params,nclasses,tilesize,message", [
    ({}, 2, 40, r"tilesize 40 .* divisible by 2\^4 = 16"),
    ({"filtres": 32}, 2, 64, "filtres unknown; expected some of: depth, dropout"),
    ({"filters": 0}, 2, 64, "filters must be a whole number >= 1, not 0"),
    ({"depth": "4"}, 2, 64, "depth must be a whole number >= 1, not '4'"),
    ({"dropout": 1.0}, 2, 64, r"dropout must be a number in \[0, 1\), not 1.0"),
    ({}, 1, 64, "at least 2 classes"),
])
def test_bad_settings_are_rejected(params, nclasses, tilesize, message):
    assert re.search(message, conformance.check_rejects(UNet64(), params, nclasses, tilesize))
    UNet64().validate(3, 2, 40, {"depth": 3})  # 40 px is fine at depth 3


def test_tiny_model_learns_bright_squares():
    miou = conformance.check_learns_squares(UNet64(), {"filters": 8, "depth": 2})
    assert miou >= 0.9, miou

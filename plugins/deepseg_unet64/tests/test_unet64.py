"""Tests of the unet64 model plugin: build, validation, registry, save/load, learning."""

import subprocess
import sys

import numpy as np
import pytest
from deepseg_unet64.plugin import UNet64

from deepseg_core.errors import DeepSegError
from deepseg_core.models import TrainSettings

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


def squares(n, size=32, seed=0):
    """Bright squares (class 1) on dark noise (class 0): 3-band images and their labels."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.3, (n, size, size, 3)).astype("float32")
    labels = np.zeros((n, size, size), "int32")
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            side = rng.integers(6, 14)
            r, c = rng.integers(0, size - side, 2)
            labels[i, r:r + side, c:c + side] = 1
    images[labels == 1] += 1.5
    return images, labels


def test_full_size_parameter_count():
    model = UNet64().build(3, 2, 256, {})
    assert model.count_params() == expected_params(3, 2, 64, 4) == 31_049_474
    assert model.output_shape == (None, None, None, 2)


@pytest.mark.parametrize("nbands,nclasses,filters,depth", [(1, 2, 4, 1), (7, 5, 8, 3)])
def test_small_parameter_counts(nbands, nclasses, filters, depth):
    model = UNet64().build(nbands, nclasses, 32, {"filters": filters, "depth": depth})
    assert model.count_params() == expected_params(nbands, nclasses, filters, depth)


def test_forward_pass_gives_probabilities_on_any_divisible_tile():
    model = UNet64().build(5, 3, 32, TINY)
    for size in (32, 48):
        probs = np.asarray(model(np.random.rand(2, size, size, 5).astype("float32")))
        assert probs.shape == (2, size, size, 3)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


def test_softmax_is_float32_under_mixed_precision():
    import keras

    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = UNet64().build(3, 2, 32, TINY)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.get_layer("logits").compute_dtype == "float16"
    assert model.output.dtype == "float32"


def test_dropout_adds_a_layer_but_no_weights():
    plain = UNet64().build(3, 2, 32, TINY)
    dropped = UNet64().build(3, 2, 32, {**TINY, "dropout": 0.5})
    assert dropped.get_layer("bottom_dropout").rate == 0.5
    assert dropped.count_params() == plain.count_params()


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # keras' saver
def test_save_load_round_trip_predicts_the_same(tmp_path):
    import keras

    plugin = UNet64()
    model = plugin.build(4, 3, 32, TINY)
    plugin.compile(model, TrainSettings(nclasses=3))
    images = np.random.default_rng(1).random((2, 32, 32, 4), dtype="float32")
    model.train_on_batch(images, np.ones((2, 32, 32), "int32"))  # moves weights, BN and optimizer
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", custom_objects=plugin.custom_objects())
    np.testing.assert_array_equal(loaded.predict_on_batch(images), model.predict_on_batch(images))


def test_registered_through_the_plugin_manager():
    from deepseg_core.plugins import load_plugins

    plugins = load_plugins()
    model = plugins.registry.get("model", "unet64")
    assert isinstance(model, UNet64) and model.segmentation_type == "semantic"
    assert plugins.registry.provided_by("unet64") == {"model": ["unet64"]}


def test_plugin_import_leaves_keras_unloaded():
    code = ("import sys, deepseg_unet64.plugin; "
            "assert not {'keras', 'tensorflow'} & set(sys.modules), 'keras imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tilesize_not_divisible_by_two_to_the_depth_is_rejected():
    with pytest.raises(DeepSegError, match=r"tilesize 40 .* divisible by 2\^4 = 16"):
        UNet64().validate({}, 40, 3, 2)
    UNet64().validate({"depth": 3}, 40, 3, 2)


def test_unknown_parameter_is_rejected():
    with pytest.raises(DeepSegError, match="filtres unknown; expected some of: depth, dropout"):
        UNet64().validate({"filtres": 32}, 64, 3, 2)


@pytest.mark.parametrize("params,nclasses,message", [
    ({"filters": 0}, 2, "filters must be a whole number >= 1, not 0"),
    ({"depth": "4"}, 2, "depth must be a whole number >= 1, not '4'"),
    ({"dropout": 1.0}, 2, r"dropout must be a number in \[0, 1\), not 1.0"),
    ({}, 1, "at least 2 classes"),
])
def test_bad_parameter_values_are_rejected(params, nclasses, message):
    with pytest.raises(DeepSegError, match=message):
        UNet64().build(3, nclasses, 64, params)


def test_tiny_unet_learns_bright_squares():
    import keras

    keras.utils.set_random_seed(0)
    plugin = UNet64()
    model = plugin.build(3, 2, 32, {"filters": 8, "depth": 2})
    plugin.compile(model, TrainSettings(nclasses=2, learning_rate=1e-2))
    images, labels = squares(64)
    # enough steps for the batch normalization moving statistics (momentum 0.99) to settle
    model.fit(images, labels, batch_size=4, epochs=10, verbose=0)
    scores = model.evaluate(*squares(32, seed=1), batch_size=16, verbose=0, return_dict=True)
    assert scores["miou"] >= 0.9, scores

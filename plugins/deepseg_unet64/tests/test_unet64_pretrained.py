"""unet64 from pretrained weights: a ResNet50 encoder's Keras Applications file, best.keras."""

import keras
import numpy as np
import pytest
from deepseg_unet64.plugin import UNet64

from deepseg_core.errors import DeepSegError
from deepseg_core.models.pretrained import named_layers, own_variables
from deepseg_core.testing.keras_apps import write_keras_apps_h5

NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
ENC = {"filters": 4, "encoder": "resnet50"}


@pytest.fixture(scope="module")
def resnet50(tmp_path_factory):
    """A freshly initialized ResNet50 (no top) and its weights in the Keras Applications file."""
    keras.utils.set_random_seed(3)
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    path = tmp_path_factory.mktemp("keras") / NOTOP
    write_keras_apps_h5(path, base)
    return base, path


def assert_encoder_equal(model, base, skip=()):
    ours, compared = named_layers(model), 0
    for layer in base.layers:
        values = own_variables(layer)
        if values and layer.name not in skip:
            for a, b in zip(own_variables(ours[layer.name]), values, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=layer.name)
            compared += 1
    assert compared == 106 - len(skip)  # ResNet50's convolutions and batch norms


def test_encoder_weights_from_a_path_fill_every_encoder_layer(resnet50, capsys):
    base, path = resnet50
    model = UNet64().build(3, 2, 64, {**ENC, "encoder_weights": str(path)})
    assert_encoder_equal(model, base)
    printed = capsys.readouterr().out
    assert f"weights {path}: loaded 106 layers, adapted 0, skipped 0, 26 model layers not " \
           "in the file" in printed
    assert "not in the file: up4_deconv, up4_conv1" in printed
    assert model.predict(np.zeros((1, 64, 64, 3)), verbose=0).shape == (1, 64, 64, 2)


def test_imagenet_weights_come_from_the_keras_cache_folder(resnet50, tmp_path, monkeypatch):
    base, path = resnet50
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / NOTOP).write_bytes(path.read_bytes())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    model = UNet64().build(3, 2, 64, {**ENC, "encoder_weights": "imagenet"})
    assert_encoder_equal(model, base)


def test_missing_imagenet_file_is_an_error_that_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(DeepSegError, match=f"encoder_weights: imagenet weights of resnet50 not "
                                           f"found at {tmp_path}/models/{NOTOP}; DeepSeg never "
                                           "downloads"):
        UNet64().validate(3, 2, 64, {**ENC, "encoder_weights": "imagenet"})


def test_other_band_counts_adapt_the_first_convolution(resnet50, capsys):
    base, path = resnet50
    model = UNet64().build(5, 2, 64, {**ENC, "encoder_weights": str(path)})
    assert_encoder_equal(model, base, skip={"conv1_conv"})
    rgb, bias = own_variables(base.get_layer("conv1_conv"))
    kernel, got_bias = own_variables(model.get_layer("conv1_conv"))
    np.testing.assert_allclose(kernel[:, :, :3], rgb * 3 / 5, rtol=1e-6)
    np.testing.assert_allclose(kernel[:, :, 3:], np.repeat(rgb.mean(axis=2, keepdims=True),
                                                           2, axis=2) * 3 / 5, rtol=1e-5)
    np.testing.assert_array_equal(got_bias, bias)
    assert ("adapted conv1_conv: 3 bands in the file, 5 in the model (the file's band kernels "
            "averaged into the extra bands, scaled by 3/5)") in capsys.readouterr().out


def test_a_previous_model_loads_by_name_and_skips_other_class_counts(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    previous = UNet64().build(3, 4, 32, {"filters": 4, "depth": 2})
    path = tmp_path / "best.keras"
    previous.save(path)
    model = UNet64().build(3, 2, 32, {"filters": 4, "depth": 2, "weights": str(path)})
    printed = capsys.readouterr().out
    assert "skipped logits: shape (1, 1, 4, 4), (4,) in the file, (1, 1, 4, 2), (2,) in the " \
           "model" in printed
    for layer in previous.layers:
        if own_variables(layer) and layer.name != "logits":
            for a, b in zip(own_variables(model.get_layer(layer.name)), own_variables(layer)):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params,tilesize,message", [
    ({"encoder": "vgg99"}, 64, "model parameter encoder must be one of resnet50, resnet101, "
                               "efficientnet_lite0, vgg16, "
                               "not 'vgg99'"),
    ({"encoder_weights": "imagenet"}, 64, "encoder_weights needs an encoder"),
    ({**ENC, "depth": 3}, 64, "model parameter depth is 5 with encoder resnet50, not 3"),
    (ENC, 48, "tilesize 48 cannot be taken by encoder resnet50: it must be divisible by "
              "2\\^5 = 32"),
    ({**ENC, "encoder_weights": "/nowhere/r.h5"}, 64,
     "model parameter encoder_weights: file '/nowhere/r.h5' not found"),
    ({"weights": "model.pt"}, 64, "model parameter weights must be a .keras, .weights.h5 or "
                                  ".h5 file, not 'model.pt'"),
])
def test_bad_pretrained_settings_name_the_parameter(params, tilesize, message):
    with pytest.raises(DeepSegError, match=message):
        UNet64().validate(3, 2, tilesize, params)

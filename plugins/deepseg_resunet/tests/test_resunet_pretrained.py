"""resunet from pretrained weights: a ResNet50 encoder's Keras Applications file, best.keras."""

import keras
import numpy as np
import pytest
from deepseg_resunet.plugin import ResUNet

from deepseg_core.errors import DeepSegError
from deepseg_core.models.pretrained import own_variables
from deepseg_core.testing.keras_apps import write_keras_apps_h5

NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


def test_resnet50_encoder_weights_from_the_keras_cache(tmp_path, monkeypatch, capsys):
    keras.utils.set_random_seed(4)
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    (tmp_path / "models").mkdir()
    write_keras_apps_h5(tmp_path / "models" / NOTOP, base)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    model = ResUNet().build(3, 3, 64, {"filters": 4, "encoder": "resnet50",
                                       "encoder_weights": "imagenet"})
    compared = 0
    for layer in base.layers:
        if values := own_variables(layer):
            for a, b in zip(own_variables(model.get_layer(layer.name)), values, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=layer.name)
            compared += 1
    assert compared == 106
    assert "loaded 106 layers, adapted 0, skipped 0" in capsys.readouterr().out
    assert model.predict(np.zeros((2, 64, 64, 3)), verbose=0).shape == (2, 64, 64, 3)


def test_a_previous_resunet_loads_by_name(tmp_path, capsys):
    previous = ResUNet().build(4, 2, 32, {"filters": 4, "depth": 2})
    path = tmp_path / "best.keras"
    previous.save(path)
    model = ResUNet().build(3, 2, 32, {"filters": 4, "depth": 2, "weights": str(path)})
    printed = capsys.readouterr().out
    assert "adapted stem_conv: 4 bands in the file, 3 in the model (the first 3 band kernels " \
           "kept, scaled by 4/3)" in printed
    assert "skipped 0," in printed
    np.testing.assert_array_equal(model.get_layer("down1_a_conv").kernel,
                                  previous.get_layer("down1_a_conv").kernel)


@pytest.mark.parametrize("params,tilesize,message", [
    ({"encoder": "resnet18"}, 64, "encoder must be one of resnet50, resnet101, "
                                  "efficientnet_lite0, vgg16, not 'resnet18'"),
    ({"encoder": "resnet50", "depth": 4}, 64, "depth is 5 with encoder resnet50, not 4"),
    ({"encoder": "resnet50"}, 80, "tilesize 80 cannot be taken by encoder resnet50"),
])
def test_bad_encoder_settings_name_the_parameter(params, tilesize, message):
    with pytest.raises(DeepSegError, match=message):
        ResUNet().validate(3, 2, tilesize, params)


def test_efficientnet_lite0_encoder_from_a_pytorch_state_dict(tmp_path, capsys):
    from deepseg_core.testing.encoder_files import write_lite0_pth

    state = write_lite0_pth(tmp_path / "lite0.pth", seed=7)
    model = ResUNet().build(3, 2, 32, {"filters": 4, "encoder": "efficientnet_lite0",
                                       "encoder_weights": str(tmp_path / "lite0.pth")})
    assert "loaded 96 layers, adapted 0, skipped 0" in capsys.readouterr().out
    np.testing.assert_array_equal(model.get_layer("lite0_blocks_9_expand_conv").kernel,
                                  state["_blocks.9._expand_conv.weight"].transpose(2, 3, 1, 0))
    out = keras.ops.convert_to_numpy(model(np.ones((1, 32, 32, 3), "float32"), training=False))
    assert out.shape == (1, 32, 32, 2) and np.isfinite(out).all()

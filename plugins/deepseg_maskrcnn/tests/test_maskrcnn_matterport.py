"""matterport's mask_rcnn_coco.h5 layout loads completely into the plugin (file written here)."""

import numpy as np
import pytest
from deepseg_maskrcnn.backbone import BN_EPSILON
from deepseg_maskrcnn.matterport import MATTERPORT_EPSILON, backbone_name
from deepseg_maskrcnn.plugin import MaskRCNNPlugin
from deepseg_maskrcnn.weights import load_by_name
from matterport_h5 import matterport_layers, write_matterport_h5

from deepseg_core.models.pretrained import named_layers, own_variables

# matterport-shaped but small: one block per stage (resnet_tiny), narrow heads
TINY = {"backbone": "resnet_tiny", "fpn_channels": 16, "rpn_channels": 24, "head_fc": 32,
        "mask_channels": 8, "anchor_scales": [8, 16, 32, 64, 128], "pre_nms_limit": 300,
        "proposals_train": 100, "proposals_infer": 60, "rois_per_image": 16}
TINY_FILE = dict(blocks=(1, 1, 1, 1), width=16, fpn=16, rpn=24, fc=32, mask=8)


def weights_of(model, name):
    return own_variables(named_layers(model)[name])


@pytest.mark.parametrize("name,ours", [
    ("conv1", "conv1_conv"), ("bn_conv1", "conv1_bn"), ("res2a_branch1", "conv2_block1_0_conv"),
    ("bn4w_branch2c", "conv4_block23_3_bn"), ("res5c_branch2b", "conv5_block3_2_conv"),
    ("fpn_p2", None)])
def test_backbone_name_map(name, ours):
    assert backbone_name(name) == ours


def test_the_published_coco_layout_loads_completely(tmp_path, capsys):
    layers = matterport_layers()  # ResNet101, 81 classes, FPN 256, RPN 512: the COCO file
    path = tmp_path / "mask_rcnn_coco.h5"
    write_matterport_h5(path, layers)
    model = MaskRCNNPlugin().build(3, 81, 64, {"backbone": "resnet101", "rpn_channels": 512,
                                               "weights": str(path)})
    printed = capsys.readouterr().out
    weighted = [n for n, layer in named_layers(model).items() if own_variables(layer)]
    assert f"loaded {len(weighted)} layers, adapted 0, skipped 0, 0 model layers not in " \
           "the file" in printed
    assert "in the file only" not in printed and "without a counterpart" not in printed
    kernel = layers["res4w_branch2c"]["res4w_branch2c/kernel:0"]
    np.testing.assert_array_equal(weights_of(model, "conv4_block23_3_conv")[0], kernel)
    var = layers["bn5c_branch2a"]["bn5c_branch2a/moving_variance:0"]
    np.testing.assert_allclose(weights_of(model, "conv5_block3_1_bn")[3] + BN_EPSILON,
                               var + MATTERPORT_EPSILON, rtol=1e-6)
    raw = layers["rpn_model"]["rpn_class_raw/kernel:0"]
    np.testing.assert_allclose(weights_of(model, "rpn_class_raw")[0],
                               raw[..., 1::2] - raw[..., 0::2])


def test_heads_are_folded_exactly_and_class_heads_reinitialized(tmp_path, capsys):
    layers = matterport_layers(nclasses=5, **TINY_FILE)
    path = tmp_path / "coco_like.h5"
    write_matterport_h5(path, layers)
    model = MaskRCNNPlugin().build(4, 3, 64, {**TINY, "weights": str(path)})  # 4 bands, 3 cls
    printed = capsys.readouterr().out
    assert "skipped 3," in printed and "0 model layers not in the file" in printed
    for head in ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask"):
        assert f"skipped {head}: shape" in printed
        assert "in the model (re-initialized for the model's 3 classes)" in printed
    assert "adapted conv1_conv: 3 bands in the file, 4 in the model" in printed
    conv1 = layers["conv1"]["conv1/kernel:0"]
    kernel = weights_of(model, "conv1_conv")[0]
    np.testing.assert_allclose(kernel[:, :, :3], conv1 * 3 / 4, rtol=1e-6)
    np.testing.assert_allclose(kernel[:, :, 3], conv1.mean(axis=2) * 3 / 4, rtol=1e-5)

    # the box head's first layer = matterport's 7x7 conv + frozen batch norm + ReLU
    rng = np.random.default_rng(1)
    pooled = rng.normal(size=(5, 7, 7, 16)).astype(np.float32)
    k, b = layers["mrcnn_class_conv1"].values()
    gamma, beta, mean, var = layers["mrcnn_class_bn1"].values()
    conv = np.einsum("nrcf,rcfo->no", pooled, k) + b
    expected = np.maximum(gamma * (conv - mean) / np.sqrt(var + MATTERPORT_EPSILON) + beta, 0)
    fc1 = model.box_head.get_layer("mrcnn_class_fc1")
    got = np.asarray(fc1(pooled.reshape(5, -1)))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_matterport_file_into_a_narrower_rpn_names_the_shapes(tmp_path):
    layers = matterport_layers(nclasses=3, **TINY_FILE)
    path = tmp_path / "coco_like.h5"
    write_matterport_h5(path, layers)
    model = MaskRCNNPlugin().build(3, 3, 64, {**TINY, "rpn_channels": None})
    report = load_by_name(model, str(path))
    assert [s.split(":")[0] for s in report.skipped] == ["rpn_conv_shared", "rpn_class_raw",
                                                        "rpn_bbox_pred"]
    assert "shape (3, 3, 16, 24), (24,) in the file, (3, 3, 16, 16), (16,) in the model" in \
        report.skipped[0]

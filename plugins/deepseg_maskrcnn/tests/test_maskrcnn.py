"""Fast tests of the Mask R-CNN plugin: validation, targets, geometry, build, detect, weights."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
from deepseg_maskrcnn.batch import instance_targets
from deepseg_maskrcnn.config import DEFAULTS
from deepseg_maskrcnn.plugin import MaskRCNNPlugin
from deepseg_maskrcnn.unmold import mask_box, paste_mask

from deepseg_core.builtin.augment import dihedral
from deepseg_core.contracts.model import Instance, TileResult
from deepseg_core.errors import DeepSegError

TINY = {"backbone": "resnet_tiny", "fpn_channels": 16, "head_fc": 32, "mask_channels": 8,
        "anchor_scales": [8, 16, 32, 64, 128], "rpn_train_anchors": 64, "pre_nms_limit": 300,
        "proposals_train": 100, "proposals_infer": 60, "rois_per_image": 16}


def test_plugin_import_leaves_keras_unloaded():
    code = ("import sys, deepseg_maskrcnn.plugin; "
            "assert not {'keras', 'tensorflow'} & set(sys.modules), 'keras imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered_through_the_plugin_manager():
    from deepseg_core.plugins import load_plugins

    plugins = load_plugins()
    model = plugins.registry.get("model", "maskrcnn")
    assert isinstance(model, MaskRCNNPlugin) and model.segmentation_type == "instance"


def test_defaults_allow_300_instances_and_validate():
    assert DEFAULTS["max_instances"] >= 300
    MaskRCNNPlugin().validate(3, 2, 256, {})
    MaskRCNNPlugin().validate(7, 5, 64, TINY)


def test_unknown_parameter_is_rejected_listing_the_known_ones():
    with pytest.raises(DeepSegError, match=r"anchor_scale unknown; expected some of: anchor_"
                                           r"octaves, anchor_ratios, anchor_scales, backbone"):
        MaskRCNNPlugin().validate(3, 2, 128, {"anchor_scale": [8]})


@pytest.mark.parametrize("params,tilesize,nclasses,message", [
    ({"backbone": "vgg19"}, 128, 2, "backbone must be one of resnet50, resnet101, resnet_tiny, "
                                    "efficientnet_lite0, vgg16, not 'vgg19'"),
    ({"anchor_scales": [8, 16, 32]}, 128, 2, "anchor_scales must be a list of 5 positive"),
    ({"anchor_ratios": [1, -2]}, 128, 2, "anchor_ratios must be a list of positive"),
    ({"rpn_train_anchors": 0}, 128, 2, "rpn_train_anchors must be a whole number >= 1"),
    ({"max_instances": 2.5}, 128, 2, "max_instances must be a whole number >= 1"),
    ({"detection_min_confidence": 1.5}, 128, 2, r"detection_min_confidence must be .* \(0, 1\]"),
    ({"mask_shape": 30}, 128, 2, "mask_shape must be twice mask_pool_size"),
    ({"proposals_train": 9000}, 128, 2, "pre_nms_limit"),
    ({"train_bn": "yes"}, 128, 2, "train_bn must be true or false"),
    ({"anchor_octaves": 0}, 128, 2, "anchor_octaves must be a whole number >= 1"),
    ({"rpn_positive_iou": 0}, 128, 2, r"rpn_positive_iou must be .* \(0, 1\]"),
    ({"rpn_positive_iou": 0.4, "rpn_negative_iou": 0.5}, 128, 2,
     r"rpn_negative_iou \(0.5\) must not exceed rpn_positive_iou \(0.4\)"),
    ({"weights": "/nonexistent/w.weights.h5"}, 128, 2, "weights: file .* not found"),
    ({"weights": "w.pt"}, 128, 2, "weights must be a .keras, .weights.h5 or .h5 file"),
    ({}, 100, 2, "tilesize 100 .* multiple of 32"),
    ({}, 128, 1, "nclasses >= 2"),
])
def test_bad_settings_are_rejected_naming_the_parameter(params, tilesize, nclasses, message):
    with pytest.raises(DeepSegError, match=message):
        MaskRCNNPlugin().build(3, nclasses, tilesize, params)


def hand_made_map():
    """Instance map with arbitrary ids: a rectangle, an L shape, a dot, an unlabelled id."""
    label = np.zeros((12, 16), np.uint32)
    label[1:4, 2:7] = 1000  # class 2
    label[6:11, 1:3] = 7  # L shape, class 1
    label[9:11, 3:8] = 7
    label[5, 12] = 42  # one pixel, class 1
    label[0:2, 14:16] = 5  # class 0: background
    return label


def test_prepare_batch_derives_boxes_classes_and_masks():
    label = hand_made_map()
    images = np.zeros((2, 12, 16, 3), np.float64)
    labels = np.stack([label, np.zeros_like(label)])
    x, y = MaskRCNNPlugin().prepare_batch(images, labels, [{1000: 2, 7: 1, 42: 1, 5: 0}, {}])
    assert x.dtype == np.float32 and x.shape == (2, 12, 16, 3)
    assert y["gt_boxes"].shape == (2, 300, 4) and y["gt_class_ids"].shape == (2, 300)
    expected = {7: ([6, 1, 11, 8], 1), 42: ([5, 12, 6, 13], 1), 1000: ([1, 2, 4, 7], 2)}
    slots = y["gt_instances"][0]
    for j, (iid, (box, cls)) in enumerate(sorted(expected.items())):
        np.testing.assert_array_equal(y["gt_boxes"][0, j], box)
        assert y["gt_class_ids"][0, j] == cls
        np.testing.assert_array_equal(slots == j + 1, label == iid)
    assert not y["gt_class_ids"][0, 3:].any() and not y["gt_boxes"][0, 3:].any()
    assert not slots[label == 5].any()  # class 0 is background
    assert not y["gt_class_ids"][1].any() and not y["gt_instances"][1].any()


def test_boxes_follow_a_flip_and_rotation():
    label = dihedral(hand_made_map(), 5)  # rotated 90 degrees, then mirrored
    y = instance_targets(label[None], None, 8)
    ids = sorted(i for i in np.unique(label) if i)
    for j, iid in enumerate(ids):
        rows, cols = np.nonzero(label == iid)
        np.testing.assert_array_equal(y["gt_boxes"][0, j],
                                      [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1])
    assert (y["gt_class_ids"][0, :4] == 1).all()  # no class table: every id is class 1


def test_more_objects_than_max_instances_keeps_the_largest():
    label = hand_made_map()
    with pytest.warns(UserWarning, match="only the 2 largest"):
        y = instance_targets(label[None], None, 2)
    assert y["gt_boxes"].shape == (1, 2, 4)
    np.testing.assert_array_equal(y["gt_boxes"][0], [[6, 1, 11, 8], [1, 2, 4, 7]])
    assert set(np.unique(y["gt_instances"])) == {0, 1, 2}


def test_prepare_batch_pads_to_the_max_instances_it_is_given():
    images = np.zeros((1, 12, 16, 3), np.float32)
    labels = hand_made_map()[None]
    _, y = MaskRCNNPlugin().prepare_batch(images, labels, None)
    assert y["gt_boxes"].shape == (1, DEFAULTS["max_instances"], 4)
    with pytest.warns(UserWarning, match="only the 2 largest"):
        _, y = MaskRCNNPlugin().prepare_batch(images, labels, None, {"max_instances": 2})
    assert y["gt_boxes"].shape == (1, 2, 4)


def test_roialign_samples_bin_centres():
    from deepseg_maskrcnn.roialign import crop_regions
    from keras import ops

    rows = np.broadcast_to(np.arange(16, dtype=np.float32)[:, None], (16, 16))
    image = np.ascontiguousarray(rows[None, :, :, None])
    box = np.array([[[2 / 16, 0.0, 6 / 16, 1.0]]], np.float32)  # pixel rows 2..5
    crop = ops.convert_to_numpy(crop_regions(image, box, 4))
    np.testing.assert_allclose(crop[0, 0, :, 0, 0], [2, 3, 4, 5], atol=1e-5)
    # between pixel centres: bilinear; beyond the outer centres: 0 (crop_and_resize's rule)
    box = np.array([[[0.0, 0.0, 2 / 16, 1.0], [15 / 16, 0.0, 17 / 16, 1.0]]], np.float32)
    crop = ops.convert_to_numpy(crop_regions(image, box, 2))
    np.testing.assert_allclose(crop[0, :, :, 0, 0], [[0.0, 1.0], [15.0, 0.0]], atol=1e-5)
    half = np.array([[[0.0, 0.0, 4 / 16, 1.0]]], np.float32)  # samples at rows 0.5 and 2.5
    nearest = ops.convert_to_numpy(crop_regions(image, half, 2, "nearest"))
    np.testing.assert_array_equal(nearest[0, 0, :, 0, 0], [1.0, 3.0])  # half rounds up


def test_paste_mask_fills_the_box_at_tile_scale():
    window, origin = paste_mask(np.ones((28, 28), np.float32), (3.0, 4.0, 9.0, 14.0), 16, 20)
    assert window.dtype == bool and window.shape == (6, 10) and origin == (3, 4)
    assert window.all()
    half = np.zeros((28, 28), np.float32)
    half[:, :14] = 1.0  # left half of the box
    window, origin = paste_mask(half, (0.0, 0.0, 8.0, 8.0), 16, 20)
    assert origin == (0, 0) and mask_box(window) == (0, 0, 8, 4)
    window, origin = paste_mask(half, (12.0, -4.0, 20.0, 4.0), 16, 20)  # cut by the tile
    assert origin == (12, 0) and window.shape == (4, 4) and not window.any()
    assert paste_mask(half, (20.0, 0.0, 24.0, 8.0), 16, 20) is None  # outside the tile


def test_instances_keep_box_sized_masks_that_expand_to_the_tile():
    from deepseg_maskrcnn.unmold import tile_results

    masks = np.zeros((1, 2, 28, 28), np.float32)
    masks[0, 0] = 1.0
    masks[0, 1, :, 14:] = 1.0  # right half of its box
    outputs = {"count": np.array([2]), "masks": masks, "class_ids": np.array([[1, 2]]),
               "scores": np.array([[0.9, 0.8]]),
               "boxes": np.array([[[3.0, 4.0, 9.0, 14.0], [10.0, 0.0, 16.0, 8.0]]])}
    first, second = tile_results(outputs, 16, 20)[0].instances
    assert first.box == (3, 4, 9, 14) and first.origin == (3, 4) and first.mask.shape == (6, 10)
    assert second.box == (10, 4, 16, 8) and second.mask.shape == (6, 4) and second.mask.all()
    full = second.full_mask((16, 20))
    assert full.sum() == 24 and mask_box(full) == (10, 4, 16, 8)
    assert second.extent() == second.box


def test_octave_anchors_cover_every_box_size_between_two_levels():
    from deepseg_maskrcnn.anchors import anchor_shapes, level_anchors

    shapes = anchor_shapes(16, [0.5, 1.0], octaves=3)
    assert len(shapes) == 6
    assert np.allclose([h * w for h, w in shapes[::2]], [16**2 * 4 ** (k / 3) for k in range(3)])
    assert np.allclose([w / h for h, w in shapes], [0.5, 1.0] * 3)
    # square crowns of every side from 16 to 32 px meet a same-centred anchor of IoU >= 0.79
    # (with one scale per level, a 22.6 px crown meets at most 0.5)
    sides = np.linspace(16, 32, 50)
    for octaves, floor in ((1, 0.5), (3, 2 ** (-1 / 3))):
        anchor = np.array([s for s, _ in anchor_shapes(16, [1.0], octaves)] + [32.0])
        best = [np.max(np.minimum(s, anchor) ** 2 / np.maximum(s, anchor) ** 2) for s in sides]
        assert min(best) == pytest.approx(floor, abs=0.01)
    boxes = level_anchors(2, 3, 8, 12, 4, shapes)
    assert boxes.shape == (2 * 3 * 6, 4)
    first = boxes[0] * [8, 12, 8, 12]  # row 0, col 0, octave 0, ratio 0.5: centred at (2, 2)
    height, width = 16 / 0.5**0.5, 16 * 0.5**0.5
    assert np.allclose(first, [2 - height / 2, 2 - width / 2, 2 + height / 2, 2 + width / 2])


def test_rpn_iou_thresholds_decide_positive_and_negative_anchors():
    from deepseg_maskrcnn.targets import rpn_targets
    from keras import ops

    # anchors of IoU 1, 0.64, 0.36 and 0 with the one box (10 x 10 at the origin, on 100 px)
    anchors = np.array([[0, 0, 10, 10], [0, 0, 8, 8], [0, 0, 6, 6], [50, 50, 60, 60]],
                       np.float32) / 100
    box = np.array([[[0, 0, 10, 10], [0, 0, 0, 0]]], np.float32) / 100
    valid = np.array([[True, False]])
    for positive, negative, expected in ((0.7, 0.3, [1, -1, -1, 0]), (0.5, 0.3, [1, 1, -1, 0]),
                                         (0.3, 0.3, [1, 1, 1, 0]), (0.7, 0.5, [1, -1, 0, 0])):
        labels, deltas = rpn_targets(anchors, box, valid, 4, 1.0, positive, negative)
        labels, deltas = ops.convert_to_numpy(labels), ops.convert_to_numpy(deltas)
        assert labels[0].tolist() == expected
        assert np.all(deltas[0][np.array(expected) < 1] == 0)


def test_tiny_model_with_octave_anchors_trains_a_step():
    from deepseg_core.contracts.model import TrainSettings

    plugin = MaskRCNNPlugin()
    params = {**TINY, "anchor_octaves": 2, "anchor_ratios": [1.0], "rpn_positive_iou": 0.5}
    model = plugin.build(3, 2, 64, params)
    plugin.compile(model, TrainSettings(nclasses=2, learning_rate=1e-3))
    label = np.zeros((2, 64, 64), np.int32)
    label[:, 10:30, 12:28], label[:, 40:60, 40:52] = 1, 2
    x, y = plugin.prepare_batch(np.random.default_rng(0).normal(size=(2, 64, 64, 3)), label)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["rpn_box_loss"] > 0
    assert model.feature_net.get_layer("rpn_class_raw").filters == 2


def test_a_model_saved_before_the_anchor_parameters_existed_still_loads(tiny):
    from deepseg_maskrcnn.model import MaskRCNN

    _, model = tiny
    config = model.get_config()
    for name in ("anchor_octaves", "rpn_positive_iou", "rpn_negative_iou"):
        del config["params"][name]
    old = MaskRCNN.from_config(config)
    assert old.config_params["anchor_octaves"] == 1
    assert old.config_params["rpn_positive_iou"] == 0.7
    assert old.feature_net.get_layer("rpn_class_raw").filters == 3  # the 3 ratios, as before


def test_resnet50_default_size():
    model = MaskRCNNPlugin().build(3, 81, 256, {})
    assert 44_000_000 < model.count_params() < 45_000_000  # ResNet-50-FPN Mask R-CNN, COCO


@pytest.fixture(scope="module")
def tiny():
    import keras

    keras.utils.set_random_seed(0)
    plugin = MaskRCNNPlugin()
    params = {**TINY, "detection_min_confidence": 0.05, "max_instances": 20}
    return plugin, plugin.build(4, 3, 64, params)


def test_tiny_model_on_four_bands_gives_well_formed_results(tiny):
    plugin, model = tiny
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 4)).astype(np.float32)
    results = plugin.predict_tiles(model, images)
    assert len(results) == 2 and all(isinstance(r, TileResult) for r in results)
    assert sum(len(r.instances) for r in results) > 0  # untrained, but above 0.05 confidence
    for result in results:
        assert result.probabilities is None and len(result.instances) <= 20
        scores = [inst.score for inst in result.instances]
        assert scores == sorted(scores, reverse=True)
        for inst in result.instances:
            assert isinstance(inst, Instance) and inst.class_id in (1, 2)
            assert 0.05 <= inst.score <= 1.0
            assert inst.mask.dtype == bool and inst.mask.shape == (inst.box[2] - inst.box[0],
                                                                   inst.box[3] - inst.box[1])
            assert inst.box == mask_box(inst.full_mask((64, 64))) == inst.extent()
    raw = model.detect(images)
    assert raw["masks"].shape == (2, 20, 28, 28) and raw["boxes"].shape == (2, 20, 4)
    other_size = plugin.predict_tiles(model, np.zeros((1, 96, 128, 4), np.float32))
    assert all(inst.full_mask((96, 128)).any() for inst in other_size[0].instances)


def test_weights_by_name_from_a_legacy_h5_file(tiny, tmp_path):
    plugin, model = tiny
    conv = model.feature_net.get_layer("conv2_block1_1_conv")
    kernel = np.full(conv.kernel.shape, 0.25, np.float32)
    path = tmp_path / "resnet.h5"
    with h5py.File(path, "w") as f:  # the layout of Keras 2 / keras.applications h5 files
        f.attrs["layer_names"] = [b"conv1_conv", b"conv2_block1_1_conv", b"not_in_model"]
        for name, shapes in (("conv1_conv", [(7, 7, 3, 16), (16,)]),  # 3 bands
                             ("conv2_block1_1_conv", [kernel.shape, (kernel.shape[-1],)]),
                             ("not_in_model", [(2,)])):
            group = f.create_group(name)
            group.attrs["weight_names"] = [f"{name}/w{i}".encode() for i in range(len(shapes))]
            for i, shape in enumerate(shapes):
                group[f"{name}/w{i}"] = np.full(shape, 0.25, np.float32)
    loaded = plugin.build(4, 3, 64, {**TINY, "weights": str(path)})
    np.testing.assert_array_equal(loaded.feature_net.get_layer("conv2_block1_1_conv").kernel,
                                  kernel)
    # 3 bands in the file, 4 in the model: adapted (mean kernel in band 4, all scaled by 3/4)
    np.testing.assert_allclose(loaded.feature_net.get_layer("conv1_conv").kernel, 0.1875)


def test_weights_file_without_a_matching_layer_is_an_error(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense_99"]
        f.create_group("dense_99").attrs["weight_names"] = [b"k"]
        f["dense_99/k"] = np.zeros((2, 2), np.float32)
    with pytest.raises(DeepSegError, match="no layer of .* matches"):
        MaskRCNNPlugin().build(4, 3, 64, {**TINY, "weights": str(path)})


def test_tensorflow_kernels_make_the_portable_choices(monkeypatch):
    """crop_and_resize and combined NMS (TensorFlow's kernels) against the keras.ops gather
    and greedy pass on the same inputs (on JAX both runs are the portable ones)."""
    from deepseg_maskrcnn import nms, roialign
    from deepseg_maskrcnn.detection import DetectionLayer
    from deepseg_maskrcnn.proposals import ProposalLayer
    from keras import ops

    rng = np.random.default_rng(3)
    anchors = np.sort(rng.uniform(0, 1, (400, 4)), -1)[:, [0, 2, 1, 3]].astype(np.float32)
    logits = (rng.permutation(800)[:400].reshape(1, 400) * 1e-2 - 2).astype(np.float32)
    deltas = rng.normal(0, 0.3, (1, 400, 4)).astype(np.float32)
    probs = rng.dirichlet([1, 1, 1], (1, 50)).astype(np.float32)
    box_deltas = rng.normal(0, 0.3, (1, 50, 3, 4)).astype(np.float32)
    pyramid = [rng.normal(size=(1, 64 // s, 64 // s, 4)).astype(np.float32) for s in (4, 8, 16, 32)]
    image = np.zeros((1, 64, 64, 3), np.float32)

    def run():
        rois = ProposalLayer(50, 300, 0.5)(logits, deltas, anchors)
        found = DetectionLayer(20, 0.3, 0.3)(rois, probs, box_deltas)
        pooled = roialign.PyramidROIAlign(7, 24.0)(rois, image, pyramid)
        return [ops.convert_to_numpy(v) for v in (rois, *found, pooled)]

    native = run()
    monkeypatch.setattr(nms, "PORTABLE", True)
    monkeypatch.setattr(roialign, "PORTABLE", True)
    portable = run()
    assert native[4].sum() > 3  # detections made
    for a, b in zip(native, portable):
        np.testing.assert_allclose(a, b, atol=1e-5)

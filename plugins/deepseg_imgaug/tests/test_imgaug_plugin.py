"""The imgaug augmenter: image and label move together, labels by nearest neighbour (no value
invented, pixels from outside the tile get label_fill), registered by entry point.

imgaug 0.4 needs numpy < 2: run these with ``nox -s imgaug`` (numpy 1.26 environment)."""

import numpy as np
import pytest

pytest.importorskip("imgaug", reason="imgaug is not installed (numpy < 2 only: nox -s imgaug)")

from deepseg_imgaug.augmenter import ImgaugAugmenter  # noqa: E402

from deepseg_core.errors import DeepSegError  # noqa: E402
from deepseg_core.plugins import load_plugins  # noqa: E402

GEOMETRIC = [{"Affine": {"rotate": [-40, 40], "scale": [0.7, 1.4], "shear": [-10, 10],
                         "translate_percent": [-0.2, 0.2]}},
             {"ElasticTransformation": {"alpha": 30, "sigma": 4}},
             {"PiecewiseAffine": {"scale": [0.02, 0.05]}}]


def tile(rng, size=64):
    """A label of blocky classes 1..5 and an image whose band 0 is the label (as float)."""
    label = np.kron(rng.integers(1, 6, (8, 8)), np.ones((size // 8, size // 8))).astype(np.uint8)
    image = np.stack([label.astype(np.float32), rng.normal(size=label.shape).astype(np.float32),
                      np.full(label.shape, 0.5, np.float32)], axis=-1)
    return image, label


@pytest.mark.parametrize("augmenter", GEOMETRIC, ids=lambda t: next(iter(t)))
def test_geometric_augmenters_keep_labels_nearest_and_aligned(augmenter):
    (name, params), = augmenter.items()
    # the image too is resampled with nearest here (order 0), so band 0 must equal the label
    aug = ImgaugAugmenter([{name: {**params, "order": 0}}], label_fill=255)
    rng = np.random.default_rng(0)
    for _ in range(4):
        image, label = tile(rng)
        out_image, out_label = aug(image, label, rng)
        assert out_label.dtype == np.uint8 and out_label.shape == label.shape
        assert set(np.unique(out_label)) <= set(np.unique(label)) | {255}
        inside = out_label != 255
        np.testing.assert_array_equal(out_image[..., 0][inside], out_label[inside], err_msg=name)
        assert not np.array_equal(out_label, label)  # it did transform


def test_perspective_has_no_order_setting_but_labels_stay_nearest():
    aug = ImgaugAugmenter([{"PerspectiveTransform": {"scale": [0.1, 0.15], "keep_size": True}}])
    rng = np.random.default_rng(5)
    image, label = tile(rng)
    _, out_label = aug(image, label, rng)
    assert set(np.unique(out_label)) <= set(np.unique(label)) | {255}
    assert not np.array_equal(out_label, label)


def test_default_image_interpolation_is_smooth_but_labels_stay_nearest():
    aug = ImgaugAugmenter([{"Affine": {"rotate": [20, 20]}}])
    image, label = tile(np.random.default_rng(1))
    out_image, out_label = aug(image, label, np.random.default_rng(2))
    assert set(np.unique(out_label)) <= set(np.unique(label)) | {255}
    assert len(np.unique(out_image[..., 0])) > 6  # bilinear made in-between image values


def test_same_rng_same_result_and_radiometric_augmenters_leave_labels():
    aug = ImgaugAugmenter([{"Fliplr": {"p": 0.5}}, {"AdditiveGaussianNoise": {"scale": 0.1}}])
    image, label = tile(np.random.default_rng(3))
    a = aug(image, label, np.random.default_rng(7))
    b = aug(image, label, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert set(np.unique(a[1])) == set(np.unique(label))


@pytest.mark.parametrize("kwargs, message", [
    ({"augmenters": ["Afine"]}, "augmenters\\[0\\]: imgaug has no augmenter 'Afine'"),
    ({"augmenters": []}, "parameter augmenters=\\[\\]: expected a non-empty list"),
    ({"augmenters": [{"Affine": {"rotate": "lots"}}]}, "augmenters\\[0\\] Affine"),
    ({"augmenters": ["Fliplr"], "label_fill": "x"}, "parameter label_fill='x'"),
])
def test_bad_settings_say_what_is_wrong(kwargs, message):
    with pytest.raises(DeepSegError, match=message):
        ImgaugAugmenter(**kwargs)


def test_registered_through_the_entry_point():
    assert load_plugins().registry.get("augmenter", "imgaug") is ImgaugAugmenter

"""The albumentations augmenter: image and label move together, labels by nearest neighbour
(no value invented, pixels from outside the tile get label_fill), registered by entry point."""

import numpy as np
import pytest
from deepseg_albumentations.augmenter import AlbumentationsAugmenter

from deepseg_core.errors import DeepSegError
from deepseg_core.plugins import load_plugins

GEOMETRIC = [{"Affine": {"rotate": [-40, 40], "scale": [0.7, 1.4], "shear": [-10, 10],
                         "translate_percent": [-0.2, 0.2], "p": 1.0}},
             {"ElasticTransform": {"alpha": 40, "sigma": 5, "p": 1.0}},
             {"GridDistortion": {"p": 1.0}}]


def tile(rng, size=64):
    """A label of blocky classes 1..5 and an image whose band 0 is the label (as float)."""
    label = np.kron(rng.integers(1, 6, (8, 8)), np.ones((size // 8, size // 8))).astype(np.uint8)
    image = np.stack([label.astype(np.float32), rng.normal(size=label.shape).astype(np.float32),
                      np.full(label.shape, 0.5, np.float32)], axis=-1)
    return image, label


@pytest.mark.parametrize("transform", GEOMETRIC, ids=lambda t: next(iter(t)))
def test_geometric_transforms_keep_labels_nearest_and_aligned(transform):
    (name, params), = transform.items()
    # the image too is resampled with nearest here, so band 0 must equal the label everywhere
    aug = AlbumentationsAugmenter([{name: {**params, "interpolation": 0}}], label_fill=255)
    rng = np.random.default_rng(0)
    for _ in range(5):
        image, label = tile(rng)
        out_image, out_label = aug(image, label, rng)
        assert out_label.dtype == np.uint8 and out_label.shape == label.shape
        assert set(np.unique(out_label)) <= set(np.unique(label)) | {255}
        inside = out_label != 255
        np.testing.assert_array_equal(out_image[..., 0][inside], out_label[inside])
        assert not np.array_equal(out_label, label)  # it did transform


def test_default_image_interpolation_is_smooth_but_labels_stay_nearest():
    aug = AlbumentationsAugmenter([{"Affine": {"rotate": [20, 20], "p": 1.0}}])
    image, label = tile(np.random.default_rng(1))
    out_image, out_label = aug(image, label, np.random.default_rng(2))
    assert set(np.unique(out_label)) <= set(np.unique(label)) | {255}
    assert len(np.unique(out_image[..., 0])) > 6  # bilinear made in-between image values


def test_same_rng_same_result_and_radiometric_transforms_leave_labels():
    aug = AlbumentationsAugmenter(["HorizontalFlip", {"GaussNoise": {"p": 1.0}}])
    image, label = tile(np.random.default_rng(3))
    a = aug(image, label, np.random.default_rng(7))
    b = aug(image, label, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert set(np.unique(a[1])) == set(np.unique(label))


@pytest.mark.parametrize("kwargs, message", [
    ({"transforms": ["Afine"]}, "transforms\\[0\\]: albumentations has no transform 'Afine'"),
    ({"transforms": [{"Affine": {"mask_interpolation": 1}}]},
     "mask_interpolation=1: labels are always nearest neighbour"),
    ({"transforms": [{"Affine": {"fill_mask": 3}}]}, "fill_mask: set the augmenter's label_fill"),
    ({"transforms": []}, "parameter transforms=\\[\\]: expected a non-empty list"),
    ({"transforms": ["HorizontalFlip"], "p": 2}, "parameter p=2: expected a number in"),
    ({"transforms": [{"Affine": {"rotate": "lots"}}]}, "transforms\\[0\\] Affine"),
])
def test_bad_settings_say_what_is_wrong(kwargs, message):
    with pytest.raises(DeepSegError, match=message):
        AlbumentationsAugmenter(**kwargs)


def test_registered_through_the_entry_point():
    plugins = load_plugins()
    factory = plugins.registry.get("augmenter", "albumentations")
    assert factory is AlbumentationsAugmenter

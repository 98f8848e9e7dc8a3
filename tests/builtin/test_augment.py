"""The built-in augmenters: lossless flips/rot90 that keep image and label aligned, jitter."""

import numpy as np
import pytest

from deepseg_core.builtin.augment import FlipRotate, RadiometricJitter, dihedral
from deepseg_core.errors import DeepSegError
from deepseg_core.plugins.manager import load_plugins


def pattern(rows=8, cols=8, bands=3):
    """A label where every pixel is unique, and an image whose band 0 repeats it."""
    label = np.arange(rows * cols, dtype=np.int32).reshape(rows, cols)
    image = np.stack([label.astype(np.float32) + 1000 * b for b in range(bands)], axis=-1)
    return image, label


def test_the_eight_transforms_are_distinct_and_lossless():
    image, label = pattern()
    outputs = [dihedral(label, k) for k in range(8)]
    assert len({o.tobytes() for o in outputs}) == 8
    for k, out in enumerate(outputs):
        assert out.shape == label.shape
        assert sorted(out.ravel()) == sorted(label.ravel())
        img = dihedral(image, k)
        assert (img[..., 0] == out).all() and (img[..., 2] == out + 2000).all()
    assert (dihedral(label, 4) == label[:, ::-1]).all()
    assert (dihedral(label, 6) == label[::-1]).all()


def test_flips_keep_image_and_label_aligned():
    image, label = pattern()
    aug, rng, seen = FlipRotate(), np.random.default_rng(0), set()
    for _ in range(200):
        img, lab = aug(image, label, rng)
        assert img.shape == image.shape and lab.shape == label.shape
        assert img.dtype == image.dtype and lab.dtype == label.dtype
        assert (img[..., 0] == lab).all() and (img[..., 1] == lab + 1000).all()
        assert set(np.unique(lab)) == set(np.unique(label))
        seen.add(next(k for k in range(8) if (dihedral(label, k) == lab).all()))
    assert seen == set(range(8))  # every transform is drawn


def test_flips_of_a_non_square_tile_keep_its_shape():
    image, label = pattern(6, 10)
    aug, rng = FlipRotate(), np.random.default_rng(1)
    for _ in range(50):
        img, lab = aug(image, label, rng)
        assert lab.shape == (6, 10) and img.shape == (6, 10, 3)
        assert (img[..., 0] == lab).all()


def test_flips_probability_and_determinism():
    image, label = pattern()
    img, lab = FlipRotate(p=0.0)(image, label, np.random.default_rng(3))
    assert img is image and lab is label
    first = FlipRotate(p=0.5)
    a = [first(image, label, np.random.default_rng(7)) for _ in range(2)]
    assert (a[0][0] == a[1][0]).all() and (a[0][1] == a[1][1]).all()
    with pytest.raises(DeepSegError, match="differ in size"):
        FlipRotate()(image, label[:4], np.random.default_rng(0))


def test_jitter_changes_the_image_only():
    image, label = pattern()
    image = image / 1000
    aug = RadiometricJitter(brightness=0.2, contrast=0.2, noise=0.05)
    img, lab = aug(image, label.copy(), np.random.default_rng(0))
    assert lab is not None and (lab == label).all()
    assert img.dtype == np.float32 and img.shape == image.shape
    assert not np.allclose(img, image)
    assert np.abs(img - image).max() < 1.0
    again, _ = aug(image, label, np.random.default_rng(0))
    assert (again == img).all()  # deterministic for a seeded generator
    other, _ = aug(image, label, np.random.default_rng(1))
    assert not (other == img).all()


def test_jitter_components():
    image = np.random.default_rng(5).random((16, 16, 2), dtype=np.float32)
    rng = np.random.default_rng(2)
    shifted, _ = RadiometricJitter(brightness=0.3, contrast=0, noise=0)(image, None, rng)
    offsets = (shifted - image).reshape(-1, 2)
    assert np.allclose(offsets, offsets[0], atol=1e-5)  # one constant shift per band
    assert offsets[0, 0] != offsets[0, 1] and np.abs(offsets[0]).max() <= 0.3
    stretched, _ = RadiometricJitter(brightness=0, contrast=0.5, noise=0)(image, None, rng)
    assert np.allclose(stretched.mean(axis=(0, 1)), image.mean(axis=(0, 1)), atol=1e-5)
    same, _ = RadiometricJitter(p=0.0)(image, None, rng)
    assert same is image


@pytest.mark.parametrize("factory, params, name", [
    (RadiometricJitter, {"brightness": -0.1}, "brightness"),
    (RadiometricJitter, {"contrast": 1.5}, "contrast"),
    (RadiometricJitter, {"noise": "lots"}, "noise"),
    (RadiometricJitter, {"noise": float("nan")}, "noise"),
    (RadiometricJitter, {"p": 2}, "p="),
    (FlipRotate, {"p": -0.5}, "p="),
    (FlipRotate, {"p": True}, "p=")])
def test_invalid_parameters_name_the_parameter(factory, params, name):
    with pytest.raises(DeepSegError, match=name):
        factory(**params)


def test_registered_names():
    registry = load_plugins().registry
    assert registry.get("augmenter", "flips") is FlipRotate
    assert registry.get("augmenter", "jitter") is RadiometricJitter

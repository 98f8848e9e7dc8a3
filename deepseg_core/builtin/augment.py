"""Built-in augmenters: the 8 lossless flips/rotations, and per-band radiometric jitter.

Both are factories: ``FlipRotate(**params)`` returns ``aug(image, label, rng) -> (image, label)``
with image ``(rows, cols, bands)`` float32 and label ``(rows, cols)``. Nothing interpolates.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

from deepseg_core import hookimpl
from deepseg_core.errors import DeepSegError

if TYPE_CHECKING:
    from ..plugins.registry import Registry

SHAPE_KEEPING = (0, 2, 4, 6)  # the dihedral transforms that keep a non-square tile's shape


def _number(augmenter: str, name: str, value: object, low: float,
            high: float = math.inf) -> float:
    """``value`` as a float in [low, high], else a DeepSegError naming the parameter."""
    number = float(value) if isinstance(value, numbers.Real) else math.nan
    if isinstance(value, bool) or not low <= number <= high or math.isnan(number):
        expected = f"a number >= {low}" if high == math.inf else f"a number in [{low}, {high}]"
        raise DeepSegError(f"augmenter {augmenter!r}: parameter {name}={value!r}: "
                           f"expected {expected}")
    return number


def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """Transform ``k`` (0..7) of the first two axes: rot90 ``k % 4`` times, then flip if k >= 4."""
    out = np.rot90(array, k % 4, axes=(0, 1))
    return out[:, ::-1] if k >= 4 else out


class FlipRotate:
    """One of the 8 flips/rot90 combinations at random, applied identically to image and label.

    ``p``: probability of drawing a transform at all (the draw includes the identity, so with
    the default p=1 all 8 are equally likely). A non-square tile only gets the 4 transforms
    that keep its shape.
    """

    def __init__(self, p: float = 1.0) -> None:
        self.p = _number("flips", "p", p, 0.0, 1.0)

    def __call__(self, image: np.ndarray, label: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The transformed (image, label)."""
        if self.p < 1.0 and rng.random() >= self.p:
            return image, label
        if image.shape[:2] != label.shape[:2]:
            raise DeepSegError(f"augmenter 'flips': image {image.shape} and label "
                               f"{label.shape} differ in size")
        square = image.shape[0] == image.shape[1]
        k = int(rng.integers(8)) if square else SHAPE_KEEPING[int(rng.integers(4))]
        return (np.ascontiguousarray(dihedral(image, k)),
                np.ascontiguousarray(dihedral(label, k)))


class RadiometricJitter:
    """Per-band brightness shift, contrast stretch around the band mean and Gaussian noise.

    In normalized units: each band gets ``+ U(-brightness, brightness)``, a contrast factor
    ``U(1 - contrast, 1 + contrast)`` around its mean and noise of std ``noise``; with
    probability ``p``. The label is never touched.
    """

    def __init__(self, brightness: float = 0.1, contrast: float = 0.1, noise: float = 0.02,
                 p: float = 1.0) -> None:
        self.brightness = _number("jitter", "brightness", brightness, 0.0)
        self.contrast = _number("jitter", "contrast", contrast, 0.0, 1.0)
        self.noise = _number("jitter", "noise", noise, 0.0)
        self.p = _number("jitter", "p", p, 0.0, 1.0)

    def __call__(self, image: np.ndarray, label: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The jittered image (float32) and the unchanged label."""
        if self.p < 1.0 and rng.random() >= self.p:
            return image, label
        image = np.asarray(image, dtype=np.float32)
        bands: int = image.shape[-1]
        shift = rng.uniform(-self.brightness, self.brightness, bands).astype(np.float32)
        scale = rng.uniform(1 - self.contrast, 1 + self.contrast, bands).astype(np.float32)
        mean = image.mean(axis=(0, 1), dtype=np.float32)
        out = (image - mean) * scale + (mean + shift)
        if self.noise:
            out += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(self.noise)
        return out.astype(np.float32, copy=False), label


@hookimpl(tryfirst=True)  # built-ins register first: others may override
def deepseg_register_augmenters(registry: Registry) -> None:
    registry.add_augmenter("flips", FlipRotate)
    registry.add_augmenter("jitter", RadiometricJitter)

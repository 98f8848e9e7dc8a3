"""An imgaug pipeline as a DeepSeg augmenter (image and label transformed together).

``augmenters``: a list of ``{AugmenterName: {parameter: value}}`` (or just ``AugmenterName``)
from ``imgaug.augmenters``, applied in order (``iaa.Sequential``); a YAML list ``[a, b]`` is
imgaug's range tuple ``(a, b)``. ``random_order``: shuffle them per tile; ``label_fill``: the
label of pixels a transform brings in from outside the tile (default 255, DeepSeg's ignore
label; 0 for instance segmentation). The label goes through imgaug as a segmentation map,
which imgaug always resamples with nearest neighbour, so no label value is invented.
"""

from __future__ import annotations

import inspect

import numpy as np

from deepseg_core.data.label_indices import from_indices, to_indices
from deepseg_core.errors import DeepSegError

NAME = "imgaug"


def _ranges(value):
    """YAML lists as imgaug's (low, high) tuples, recursively."""
    if isinstance(value, list):
        return tuple(_ranges(v) for v in value)
    if isinstance(value, dict):
        return {k: _ranges(v) for k, v in value.items()}
    return value


def _spec(item, index: int) -> tuple[str, dict]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        (name, params), = item.items()
        if params is None or isinstance(params, dict):
            return str(name), dict(params or {})
    raise DeepSegError(f"augmenter {NAME!r}: augmenters[{index}]={item!r}: expected an "
                       "augmenter name or {AugmenterName: {parameter: value}}")


def _augmenter(iaa, name: str, params: dict, index: int):
    cls = getattr(iaa, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, iaa.Augmenter)):
        raise DeepSegError(f"augmenter {NAME!r}: augmenters[{index}]: imgaug has no "
                           f"augmenter {name!r}")
    try:
        return cls(**_ranges(params))
    except Exception as exc:  # imgaug raises AssertionError, ValueError, TypeError ...
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise DeepSegError(f"augmenter {NAME!r}: augmenters[{index}] {name}{params}: {why}") \
            from None


class ImgaugAugmenter:
    """``aug(image, label, rng) -> (image, label)`` through an ``iaa.Sequential``."""

    def __init__(self, augmenters=(), random_order: bool = False, label_fill: int = 255):
        import imgaug.augmenters as iaa  # heavy, and numpy < 2 only: when asked for

        if not isinstance(augmenters, (list, tuple)) or not augmenters:
            raise DeepSegError(f"augmenter {NAME!r}: parameter augmenters={augmenters!r}: "
                               "expected a non-empty list of imgaug augmenters")
        if isinstance(label_fill, bool) or not isinstance(label_fill, (int, np.integer)):
            raise DeepSegError(f"augmenter {NAME!r}: parameter label_fill={label_fill!r}: "
                               "expected an integer label")
        self.label_fill = int(label_fill)
        steps = [_augmenter(iaa, *_spec(item, i), i) for i, item in enumerate(augmenters)]
        self.pipeline = iaa.Sequential(steps, random_order=bool(random_order))

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        """The augmented float32 image and the label (same dtype, values from the input)."""
        from imgaug.augmentables.segmaps import SegmentationMapsOnImage

        if image.shape[:2] != label.shape[:2]:
            raise DeepSegError(f"augmenter {NAME!r}: image {image.shape} and label "
                               f"{label.shape} differ in size")
        values, indices = to_indices(label)
        segmap = SegmentationMapsOnImage(indices.astype(np.int32), shape=image.shape)
        pipeline = self.pipeline.deepcopy()  # seeding a copy: the same rng gives the same tile
        pipeline.seed_(int(rng.integers(2**31)))
        out_image, out_map = pipeline(image=np.ascontiguousarray(image, dtype=np.float32),
                                      segmentation_maps=segmap)
        mask = out_map.get_arr()
        mask = mask[..., 0] if mask.ndim == 3 else mask
        return (np.ascontiguousarray(out_image, dtype=np.float32),
                from_indices(mask.astype(np.int64), values, self.label_fill, label.dtype))

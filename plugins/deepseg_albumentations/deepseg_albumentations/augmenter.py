"""An albumentations pipeline as a DeepSeg augmenter (image and label transformed together).

``transforms``: a list of ``{TransformName: {parameter: value}}`` (or just ``TransformName``),
in order, as ``albumentations.Compose`` takes them; ``p``: probability of the whole pipeline;
``label_fill``: the label of pixels a transform brings in from outside the tile (default 255,
DeepSeg's ignore label; 0 for instance segmentation). Labels are always resampled with
nearest neighbour: a transform's ``mask_interpolation`` is set to nearest and any other value
is refused, so no label value is invented.
"""

from __future__ import annotations

import inspect

import numpy as np

from deepseg_core.data.label_indices import from_indices, to_indices
from deepseg_core.errors import DeepSegError

NEAREST = 0  # cv2.INTER_NEAREST
NAME = "albumentations"


def _spec(item, index: int) -> tuple[str, dict]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        (name, params), = item.items()
        if params is None or isinstance(params, dict):
            return str(name), dict(params or {})
    raise DeepSegError(f"augmenter {NAME!r}: transforms[{index}]={item!r}: expected a "
                       "transform name or {TransformName: {parameter: value}}")


def _transform(A, name: str, params: dict, index: int, label_fill):
    cls = getattr(A, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, A.BasicTransform)):
        raise DeepSegError(f"augmenter {NAME!r}: transforms[{index}]: albumentations has no "
                           f"transform {name!r}")
    accepted = inspect.signature(cls.__init__).parameters
    if "mask_interpolation" in accepted:
        if params.get("mask_interpolation", NEAREST) != NEAREST:
            raise DeepSegError(f"augmenter {NAME!r}: transforms[{index}] {name}: "
                               f"mask_interpolation={params['mask_interpolation']!r}: labels "
                               "are always nearest neighbour (0)")
        params["mask_interpolation"] = NEAREST
    if "fill_mask" in accepted:
        if "fill_mask" in params:
            raise DeepSegError(f"augmenter {NAME!r}: transforms[{index}] {name}: fill_mask: "
                               f"set the augmenter's label_fill instead (now {label_fill})")
        params["fill_mask"] = 0  # index 0 = outside the tile -> label_fill
    try:
        return cls(**params)
    except Exception as exc:  # albumentations validates with pydantic: ValidationError etc.
        why = " ".join(str(exc).split())
        raise DeepSegError(f"augmenter {NAME!r}: transforms[{index}] {name}{params}: {why}") \
            from None


class AlbumentationsAugmenter:
    """``aug(image, label, rng) -> (image, label)`` through an albumentations Compose."""

    def __init__(self, transforms=(), p: float = 1.0, label_fill: int = 255):
        import albumentations as A  # heavy (OpenCV): only when an experiment asks for it

        if not isinstance(transforms, (list, tuple)) or not transforms:
            raise DeepSegError(f"augmenter {NAME!r}: parameter transforms={transforms!r}: "
                               "expected a non-empty list of transforms")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise DeepSegError(f"augmenter {NAME!r}: parameter p={p!r}: expected a number "
                               "in [0, 1]")
        if isinstance(label_fill, bool) or not isinstance(label_fill, (int, np.integer)):
            raise DeepSegError(f"augmenter {NAME!r}: parameter label_fill={label_fill!r}: "
                               "expected an integer label")
        self.label_fill = int(label_fill)
        steps = [_transform(A, *_spec(item, i), i, self.label_fill)
                 for i, item in enumerate(transforms)]
        self.pipeline = A.Compose(steps, p=float(p))

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        """The augmented float32 image and the label (same dtype, values from the input)."""
        if image.shape[:2] != label.shape[:2]:
            raise DeepSegError(f"augmenter {NAME!r}: image {image.shape} and label "
                               f"{label.shape} differ in size")
        values, indices = to_indices(label)
        self.pipeline.set_random_seed(int(rng.integers(2**31)))
        out = self.pipeline(image=np.ascontiguousarray(image, dtype=np.float32), mask=indices)
        mask = np.rint(out["mask"]).astype(np.int64)
        return (np.ascontiguousarray(out["image"], dtype=np.float32),
                from_indices(mask, values, self.label_fill, label.dtype))

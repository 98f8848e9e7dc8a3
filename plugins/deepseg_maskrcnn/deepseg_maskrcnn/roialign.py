"""ROIAlign by bilinear sampling in ``keras.ops``: regions of one map, or of the pyramid level
of each region's size, with static shapes (every region samples the flattened pyramid).

On TensorFlow the same samples come from its ``crop_and_resize`` (:mod:`.roialign_tf`, several
times faster on CPU); ``PORTABLE = True`` makes TensorFlow run the ``keras.ops`` path too.
"""

from __future__ import annotations

import math

import keras
from keras import ops

#: run the keras.ops sampling on TensorFlow too (the equivalence tests set it)
PORTABLE = False


def _native() -> bool:
    return keras.backend.backend() == "tensorflow" and not PORTABLE


def _grid(low, high, size, crop: int):
    """``crop`` sample coordinates (pixel centres at integers) at the bin centres of
    ``[low, high)`` (normalized edges) on an axis of ``size`` pixels: ``(..., crop)``."""
    steps = (ops.arange(crop, dtype="float32") + 0.5) / crop
    low, high, size = (ops.expand_dims(v, -1) for v in (low, high, size))
    return low * size - 0.5 + steps * (high - low) * size


def _taps(coords, size, pool: int, method: str):
    """Per output bin of one axis: the pixels ``(..., n, k)`` it reads and their weights, for
    sample ``coords (..., n * pool)`` on an axis of ``size (...)`` pixels: bilinear (2 pixels
    a sample) or nearest (half rounds up), 0 outside ``[0, size - 1]``, the ``pool`` samples
    of a bin averaged."""
    last = ops.expand_dims(size, -1) - 1.0
    inside = ops.cast((coords >= 0) & (coords <= last), "float32") / pool
    if method == "nearest":
        index, weight = ops.floor(coords + 0.5), inside
        index, weight = ops.expand_dims(index, -1), ops.expand_dims(weight, -1)
    else:
        low = ops.floor(coords)
        frac = coords - low
        index = ops.stack([low, ops.minimum(low + 1.0, last)], axis=-1)
        weight = ops.stack([(1.0 - frac) * inside, frac * inside], axis=-1)
    index = ops.cast(ops.clip(index, 0.0, ops.expand_dims(last, -1)), "int32")
    shape = (-1, *coords.shape[1:-1], coords.shape[-1] // pool, pool * index.shape[-1])
    return ops.reshape(index, shape), ops.reshape(weight, shape)


def sample(flat, base, rows, cols, boxes, crop: int, pool: int = 1, method: str = "bilinear"):
    """``(crop / pool)``-square bins ``(B, R, n, n, C)`` of ``boxes (B, R, 4)``, each the mean of
    its ``pool x pool`` samples (``crop`` a side, at the bin centres of the box).

    ``flat (B * T, C)``: the maps, each batch item's ``T`` rows in a block; ``base (B, R)``: the
    row of pixel (0, 0) of each region's map; ``rows``/``cols (B, R)``: that map's size. As
    TensorFlow's ``crop_and_resize``: samples outside the map are 0. Every bin reads its pixels
    in one gather and sums them weighted (no per-corner tensors).
    """
    rows, cols = ops.cast(rows, "float32"), ops.cast(cols, "float32")
    y_index, y_weight = _taps(_grid(boxes[..., 0], boxes[..., 2], rows, crop), rows, pool,
                              method)
    x_index, x_weight = _taps(_grid(boxes[..., 1], boxes[..., 3], cols, crop), cols, pool,
                              method)
    width = ops.cast(ops.reshape(cols, (-1, boxes.shape[1], 1, 1, 1, 1)), "int32")
    base = ops.reshape(base, (-1, boxes.shape[1], 1, 1, 1, 1))
    index = (base + y_index[:, :, :, None, :, None] * width + x_index[:, :, None, :, None, :])
    weight = y_weight[:, :, :, None, :, None] * x_weight[:, :, None, :, None, :]
    n, taps, channels = crop // pool, y_index.shape[-1] * x_index.shape[-1], flat.shape[-1]
    picked = ops.reshape(ops.take(flat, ops.reshape(index, (-1,)), axis=0), (-1, taps, channels))
    out = ops.sum(picked * ops.reshape(weight, (-1, taps, 1)), axis=1)
    return ops.reshape(out, (-1, boxes.shape[1], n, n, channels))


def crop_regions(image, boxes, crop: int, method: str = "bilinear"):
    """``crop x crop`` samples ``(B, R, crop, crop, C)`` of ``image (B, H, W, C)`` at the bin
    centres of its normalized ``boxes (B, R, 4)`` (ROIAlign without the half-pixel shift)."""
    if _native():
        from .roialign_tf import batch_crops

        return batch_crops(image, boxes, crop, method)
    height, width, channels = image.shape[1], image.shape[2], image.shape[3]
    batch = ops.shape(image)[0]
    base = ops.expand_dims(ops.arange(batch, dtype="int32") * (height * width), 1)
    base = base + ops.zeros_like(boxes[..., 0], dtype="int32")
    size = ops.ones_like(boxes[..., 0])
    return sample(ops.reshape(image, (-1, channels)), base, size * height, size * width, boxes,
                  crop, method=method)


def roi_levels(rois, height: int, width: int, canonical_size: float):
    """Pyramid level (2..5) of each ROI: ``floor(4 + log2(sqrt(area_px) / canonical_size))``."""
    side = ops.sqrt(ops.maximum((rois[..., 2] - rois[..., 0]) * height
                                * (rois[..., 3] - rois[..., 1]) * width, 1e-6))
    level = ops.floor(4.0 + ops.log(side / canonical_size) / math.log(2.0))
    return ops.cast(ops.clip(level, 2.0, 5.0), "int32")


@keras.saving.register_keras_serializable(package="deepseg_maskrcnn")
class PyramidROIAlign(keras.layers.Layer):
    """``(rois (B, R, 4), image, [P2..P5])`` -> pooled features ``(B, R, size, size, C)``.

    Each bin averages 2 x 2 bilinear samples of the level chosen by :func:`roi_levels`.
    """

    def __init__(self, pool_size: int, canonical_size: float = 224.0, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.canonical_size = pool_size, canonical_size
        self.built = True

    def call(self, rois, image, pyramid):
        """Pooled features ``(B, R, size, size, C)`` of the ROIs, in ROI order."""
        rois = ops.cast(rois, "float32")
        level = roi_levels(rois, image.shape[1], image.shape[2], self.canonical_size) - 2
        if _native():
            from .roialign_tf import pyramid_crops

            return pyramid_crops(rois, level, pyramid, self.pool_size)
        shapes = [(p.shape[1], p.shape[2]) for p in pyramid]
        starts, total = [], 0
        for h, w in shapes:
            starts.append(total)
            total += h * w
        channels = pyramid[0].shape[-1]
        flat = ops.concatenate([ops.reshape(ops.cast(p, "float32"), (-1, h * w, channels))
                                for p, (h, w) in zip(pyramid, shapes)], axis=1)
        batch = ops.shape(rois)[0]
        base = (ops.expand_dims(ops.arange(batch, dtype="int32") * total, 1)
                + ops.take(ops.convert_to_tensor(starts, "int32"), level))
        rows = ops.take(ops.convert_to_tensor([h for h, _ in shapes], "int32"), level)
        cols = ops.take(ops.convert_to_tensor([w for _, w in shapes], "int32"), level)
        size = self.pool_size
        return sample(ops.reshape(flat, (-1, channels)), base, rows, cols, rois, 2 * size, 2)

    def compute_output_shape(self, rois_shape, image_shape=None, pyramid_shapes=None):
        channels = pyramid_shapes[0][-1] if pyramid_shapes else None
        return (*rois_shape[:2], self.pool_size, self.pool_size, channels)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size,
                "canonical_size": self.canonical_size}

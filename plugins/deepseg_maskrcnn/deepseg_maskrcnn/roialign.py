"""ROIAlign by bilinear sampling in ``keras.ops``: regions of one map, or of the pyramid level
of each region's size, with static shapes (every region samples the flattened pyramid)."""

from __future__ import annotations

import math

import keras
from keras import ops


def _grid(low, high, size, crop: int):
    """``crop`` sample coordinates (pixel centres at integers) at the bin centres of
    ``[low, high)`` (normalized edges) on an axis of ``size`` pixels: ``(..., crop)``."""
    steps = (ops.arange(crop, dtype="float32") + 0.5) / crop
    low, high, size = (ops.expand_dims(v, -1) for v in (low, high, size))
    return low * size - 0.5 + steps * (high - low) * size


def sample(flat, base, rows, cols, boxes, crop: int, method: str = "bilinear"):
    """``crop x crop`` samples ``(B, R, crop, crop, C)`` at the bin centres of ``boxes (B, R, 4)``.

    ``flat (B * T, C)``: the maps, each batch item's ``T`` rows in a block; ``base (B, R)``: the
    row of pixel (0, 0) of each region's map; ``rows``/``cols (B, R)``: that map's size. As
    TensorFlow's ``crop_and_resize``: samples outside the map are 0, ``nearest`` rounds half up.
    """
    rows, cols = ops.cast(rows, "float32"), ops.cast(cols, "float32")
    ys = _grid(boxes[..., 0], boxes[..., 2], rows, crop)
    xs = _grid(boxes[..., 1], boxes[..., 3], cols, crop)
    inside = ((ops.expand_dims((ys >= 0) & (ys <= ops.expand_dims(rows, -1) - 1), -1))
              & ops.expand_dims((xs >= 0) & (xs <= ops.expand_dims(cols, -1) - 1), -2))
    base, width = ops.expand_dims(ops.expand_dims(base, -1), -1), ops.cast(cols, "int32")
    width = ops.expand_dims(ops.expand_dims(width, -1), -1)
    last_y = ops.expand_dims(ops.cast(rows, "int32") - 1, -1)
    last_x = ops.expand_dims(ops.cast(cols, "int32") - 1, -1)
    channels = flat.shape[-1]

    def pick(yi, xi):
        index = base + ops.expand_dims(yi, -1) * width + ops.expand_dims(xi, -2)
        return ops.reshape(ops.take(flat, ops.reshape(index, (-1,)), axis=0),
                           (-1, boxes.shape[1], crop, crop, channels))

    if method == "nearest":
        yi = ops.clip(ops.cast(ops.floor(ys + 0.5), "int32"), 0, last_y)
        xi = ops.clip(ops.cast(ops.floor(xs + 0.5), "int32"), 0, last_x)
        out = pick(yi, xi)
    else:
        y0, x0 = ops.floor(ys), ops.floor(xs)
        wy = ops.expand_dims(ops.expand_dims(ys - y0, -1), -1)
        wx = ops.expand_dims(ops.expand_dims(xs - x0, -2), -1)
        top_i = ops.clip(ops.cast(y0, "int32"), 0, last_y)
        left_i = ops.clip(ops.cast(x0, "int32"), 0, last_x)
        bottom_i, right_i = ops.minimum(top_i + 1, last_y), ops.minimum(left_i + 1, last_x)
        top_left, top_right = pick(top_i, left_i), pick(top_i, right_i)
        bottom_left, bottom_right = pick(bottom_i, left_i), pick(bottom_i, right_i)
        top = top_left + (top_right - top_left) * wx
        bottom = bottom_left + (bottom_right - bottom_left) * wx
        out = top + (bottom - top) * wy
    return out * ops.cast(ops.expand_dims(inside, -1), out.dtype)


def crop_regions(image, boxes, crop: int, method: str = "bilinear"):
    """``crop x crop`` samples ``(B, R, crop, crop, C)`` of ``image (B, H, W, C)`` at the bin
    centres of its normalized ``boxes (B, R, 4)`` (ROIAlign without the half-pixel shift)."""
    height, width, channels = image.shape[1], image.shape[2], image.shape[3]
    batch = ops.shape(image)[0]
    base = ops.expand_dims(ops.arange(batch, dtype="int32") * (height * width), 1)
    base = base + ops.zeros_like(boxes[..., 0], dtype="int32")
    size = ops.ones_like(boxes[..., 0])
    return sample(ops.reshape(image, (-1, channels)), base, size * height, size * width, boxes,
                  crop, method)


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
        crops = sample(ops.reshape(flat, (-1, channels)), base, rows, cols, rois, 2 * size)
        crops = ops.reshape(crops, (-1, rois.shape[1], size, 2, size, 2, channels))
        return ops.mean(crops, axis=(3, 5))

    def compute_output_shape(self, rois_shape, image_shape=None, pyramid_shapes=None):
        channels = pyramid_shapes[0][-1] if pyramid_shapes else None
        return (*rois_shape[:2], self.pool_size, self.pool_size, channels)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size,
                "canonical_size": self.canonical_size}

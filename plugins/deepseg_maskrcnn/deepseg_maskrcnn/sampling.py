"""Random choices of the training targets with static shapes: a counter-based hash of
(position, row, training step, purpose), the same numbers on TensorFlow and JAX, and a
function of the optimizer's step only, so a resumed run draws what an uninterrupted one did."""

from __future__ import annotations

from keras import ops

#: the purposes' salts: RPN positives and negatives, ROI positives and negatives
RPN_POSITIVE, RPN_NEGATIVE, ROI_POSITIVE, ROI_NEGATIVE = 1, 2, 3, 4


def _u32(value):
    return ops.cast(value, "uint32")


def random_keys(like, step, salt: int):
    """Distinct non-negative int32 keys ``(B, N)`` (random order, then the position) for the
    rows of ``like (B, N)``, drawn from ``step`` (the optimizer's iterations) and ``salt``."""
    size = like.shape[1]
    bits = max(1, (size - 1).bit_length())
    position = ops.expand_dims(ops.arange(size, dtype="int32"), 0)
    row = ops.expand_dims(ops.arange(ops.shape(like)[0], dtype="int32"), 1)
    x = (_u32(position) * _u32(0x9E3779B1) + _u32(row) * _u32(0x85EBCA77)
         + _u32(step) * _u32(0xC2B2AE3D) + _u32(salt * 0x27D4EB2F))
    for shift, factor in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        x = ops.bitwise_xor(x, ops.right_shift(x, _u32(shift))) * _u32(factor)
    x = ops.bitwise_xor(x, ops.right_shift(x, _u32(16)))
    random = ops.cast(ops.right_shift(x, _u32(min(32, 1 + bits))), "int32")
    return random * (1 << bits) + position


def choose(candidates, keys, most: int, limit=None):
    """Mask ``(B, N)`` of at most ``most`` (or ``limit (B,)`` <= most) of the ``candidates``,
    those with the highest ``keys`` (distinct, from :func:`random_keys`)."""
    keyed = ops.where(candidates, keys, -1)
    most = min(most, keyed.shape[1])
    if most == 0:
        return ops.zeros_like(candidates)
    top, _ = ops.top_k(keyed, k=most)
    if limit is None:
        threshold = top[:, most - 1]
        return candidates & (keyed >= ops.expand_dims(threshold, 1))
    limit = ops.minimum(ops.cast(limit, "int32"), most)
    threshold = ops.take_along_axis(top, ops.expand_dims(ops.maximum(limit - 1, 0), 1), axis=1)
    return candidates & (keyed >= threshold) & ops.expand_dims(limit > 0, 1)

"""Region proposal network head, shared over the pyramid levels, and its two losses."""

from __future__ import annotations

import keras
from keras import layers


def rpn_head(pyramid: list, nanchors: int, channels: int):
    """Objectness logits ``(B, A)`` and box deltas ``(B, A, 4)`` for all anchors of all levels.

    Anchors are ordered level by level, then row, column and ratio, as :func:`anchors.anchors`.
    """
    init = keras.initializers.RandomNormal(stddev=0.01)
    shared = layers.Conv2D(channels, 3, padding="same", activation="relu",
                           kernel_initializer=init, name="rpn_conv_shared")
    classify = layers.Conv2D(nanchors, 1, kernel_initializer=init, name="rpn_class_raw")
    regress = layers.Conv2D(4 * nanchors, 1, kernel_initializer=init, name="rpn_bbox_pred")
    logits, deltas = [], []
    for level, p in enumerate(pyramid, start=2):
        h = shared(p)
        logits.append(layers.Reshape((-1,), name=f"rpn_logits_p{level}")(classify(h)))
        deltas.append(layers.Reshape((-1, 4), name=f"rpn_deltas_p{level}")(regress(h)))
    logits = layers.Concatenate(axis=1, name="rpn_logits")(logits)
    deltas = layers.Concatenate(axis=1, name="rpn_deltas")(deltas)
    return logits, deltas

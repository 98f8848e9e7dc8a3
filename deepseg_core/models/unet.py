"""The U-Net family's shared plugin: parameters, their checks, a Keras Applications encoder
and its weights, so a U-Net-shaped model plugin provides only its defaults and builder
(``deepseg_unet64``, ``deepseg_resunet``)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from ..contracts.model import KerasModel, Params, SemanticModel
from ..errors import DeepSegError
from .encoders import ENCODER_DEPTH, check_encoder


class UNetFamily(SemanticModel):
    """A semantic model whose network ``builder()(nbands, nclasses, filters, depth, dropout,
    encoder)`` is a U-Net: ``filters`` in the first level, doubled at each of ``depth``
    levels, or a Keras Applications ``encoder`` as the contracting path with its
    ``encoder_weights`` (a weights file, or ``imagenet``: the standard file in the Keras cache
    folder). Subclasses set ``defaults`` (every one of those keys) and ``builder``."""

    defaults = {"filters": 64, "depth": 4, "dropout": 0.0, "encoder": None,
                "encoder_weights": None}

    @abc.abstractmethod
    def builder(self) -> Callable[..., KerasModel]:
        """The network function (imported there: Keras loads only when a model is built)."""

    def validate(self, nbands: int, nclasses: int, tilesize: int, params: Params) -> None:
        super().validate(nbands, nclasses, tilesize, params)
        check_unet(self.params(params), params, tilesize)

    def network(self, nbands: int, nclasses: int, **params: Any) -> KerasModel:
        weights = params.pop("encoder_weights", None)
        model = self.builder()(nbands, nclasses, **params)
        if weights:
            from .encoders import load_encoder_weights

            load_encoder_weights(model, params["encoder"], weights, nbands, "encoder_weights")
        return model


def check_unet(merged: Params, given: Params, tilesize: int) -> None:
    """The U-Net family's parameter checks: ``filters``, ``depth`` and ``dropout`` of the
    merged parameters, the encoder (below), and the depth an encoder fixes (``given``: the
    parameters the user set)."""
    for name in ("filters", "depth"):
        value = merged.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DeepSegError(f"model parameter {name} must be a whole number >= 1, "
                               f"not {value!r}")
    dropout = merged.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise DeepSegError(f"model parameter dropout must be a number in [0, 1), "
                           f"not {dropout!r}")
    check_encoder(merged, tilesize)
    if merged.get("encoder"):
        if "depth" in given and given["depth"] != ENCODER_DEPTH:
            raise DeepSegError(f"model parameter depth is {ENCODER_DEPTH} with encoder "
                               f"{merged['encoder']}, not {given['depth']!r}: leave it out")
        return
    depth = int(merged.get("depth", 0))
    if depth and tilesize % (2 ** depth):
        raise DeepSegError(f"tilesize {tilesize} cannot be taken by a model of depth {depth}: "
                           f"it must be divisible by 2^{depth} = {2 ** depth}")

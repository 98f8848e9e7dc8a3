"""Hook implementations of the deepseg_resunet plugin: registers the ``resunet`` model."""

from deepseg_core import hookimpl
from deepseg_core.errors import DeepSegError
from deepseg_core.models import SemanticModel


def check_params(merged: dict, nclasses: int) -> None:
    """Raise DeepSegError naming the first parameter a residual U-Net cannot take."""
    for name in ("filters", "depth"):
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DeepSegError(f"model parameter {name} must be a whole number >= 1, not {value!r}")
    dropout = merged["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise DeepSegError(f"model parameter dropout must be a number in [0, 1), not {dropout!r}")
    if nclasses < 2:
        raise DeepSegError(f"a softmax model needs at least 2 classes, not {nclasses}")


class ResUNet(SemanticModel):
    """Residual U-Net: ``filters`` in the first level, doubled at each of ``depth`` levels."""

    defaults = {"filters": 32, "depth": 4, "dropout": 0.0}

    def validate(self, params, tilesize, nbands, nclasses):
        check_params(self.params(params), nclasses)
        super().validate(params, tilesize, nbands, nclasses)

    def network(self, nbands, nclasses, **params):
        from .model import build_resunet  # Keras is imported only when a model is built

        return build_resunet(nbands, nclasses, **params)


@hookimpl
def deepseg_register_models(registry):
    """Register the ``resunet`` semantic model."""
    registry.add_model("resunet", ResUNet())

"""Hook implementations of the deepseg_resunet plugin: registers the ``resunet`` model."""

from deepseg_core import hookimpl
from deepseg_core.models import SemanticModel


class ResUNet(SemanticModel):
    """Residual U-Net: ``filters`` in the first level, doubled at each of ``depth`` levels."""

    defaults = {"filters": 32, "depth": 4, "dropout": 0.0}

    def network(self, nbands, nclasses, **params):
        from .model import build_resunet  # Keras is imported only when a model is built

        return build_resunet(nbands, nclasses, **params)


@hookimpl
def deepseg_register_models(registry):
    """Register the ``resunet`` semantic model."""
    registry.add_model("resunet", ResUNet())

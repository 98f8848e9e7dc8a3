"""Hook implementations of the deepseg_resunet plugin: registers the ``resunet`` model."""

from deepseg_core import hookimpl
from deepseg_core.models.unet import UNetFamily


class ResUNet(UNetFamily):
    """Residual U-Net: ``filters`` in the first level, doubled at each of ``depth`` levels."""

    defaults = {**UNetFamily.defaults, "filters": 32}

    def builder(self):
        from .model import build_resunet  # Keras is imported only when a model is built

        return build_resunet


@hookimpl
def deepseg_register_models(registry):
    """Register the ``resunet`` semantic model."""
    registry.add_model("resunet", ResUNet())

"""Hook implementations of the deepseg_unet64 plugin: registers the ``unet64`` model."""

from deepseg_core import hookimpl
from deepseg_core.models.unet import UNetFamily


class UNet64(UNetFamily):
    """The classic U-Net: ``filters`` in the first level, doubled at each of ``depth`` levels."""

    defaults = {**UNetFamily.defaults, "filters": 64}

    def builder(self):
        from .model import build_unet64  # Keras is imported only when a model is built

        return build_unet64


@hookimpl
def deepseg_register_models(registry):
    """Register the ``unet64`` semantic model."""
    registry.add_model("unet64", UNet64())

"""Hook implementations of the deepseg_resunet plugin: registers the ``resunet`` model."""

from deepseg_core import hookimpl
from deepseg_core.contracts.model import SemanticModel


class ResUNet(SemanticModel):
    """Residual U-Net: ``filters`` in the first level, doubled at each of ``depth`` levels."""

    defaults = {"filters": 32, "depth": 4, "dropout": 0.0, "encoder": None,
                "encoder_weights": None}

    def validate(self, nbands, nclasses, tilesize, params):
        """The U-Net family's checks (filters, depth, dropout), plus a Keras Applications
        ``encoder`` and its ``encoder_weights`` (a weights file, or ``imagenet``: the standard
        file in the Keras cache folder)."""
        from deepseg_core.models.encoders import check_unet

        super().validate(nbands, nclasses, tilesize, params)
        check_unet(self.params(params), params, tilesize)

    def network(self, nbands, nclasses, **params):
        from .model import build_resunet  # Keras is imported only when a model is built

        weights = params.pop("encoder_weights", None)
        model = build_resunet(nbands, nclasses, **params)
        if weights:
            from deepseg_core.models.encoders import load_encoder_weights

            load_encoder_weights(model, params["encoder"], weights, nbands)
        return model


@hookimpl
def deepseg_register_models(registry):
    """Register the ``resunet`` semantic model."""
    registry.add_model("resunet", ResUNet())

"""A test-only model plugin: a tiny fully convolutional net (receptive field 5 x 5 px)."""

from deepseg_core import hookimpl
from deepseg_core.models import SemanticModel


class TinyFCN(SemanticModel):
    """Two 3x3 convolutions: predictions depend only on a 5 x 5 neighbourhood."""

    defaults = {"filters": 4}

    def network(self, nbands, nclasses, filters=4):
        import keras
        from keras import layers

        inputs = keras.Input((None, None, nbands))
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(inputs)
        x = layers.Conv2D(nclasses, 3, padding="same")(x)
        return keras.Model(inputs, layers.Activation("softmax", dtype="float32")(x))


@hookimpl
def deepseg_register_models(registry):
    registry.add_model("tinyfcn", TinyFCN())

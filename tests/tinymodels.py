"""Test-only model plugins: a tiny fully convolutional net and a blob-finding instance model."""

from deepseg_core import hookimpl
from deepseg_core.contracts.model import InstanceModel, SemanticModel


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




class TinyBlobs(InstanceModel):
    """A test-only instance model: bright connected blobs are the instances (class 1)."""

    segmentation_type = "instance"

    def validate(self, nbands, nclasses, tilesize, params):
        return None

    def build(self, nbands, nclasses, tilesize, params):
        import keras
        from keras import layers

        inputs = keras.Input((None, None, nbands))
        mean = layers.Conv2D(1, 1, use_bias=False,
                             kernel_initializer=keras.initializers.Constant(1 / nbands))(inputs)
        return keras.Model(inputs, mean)

    def compile(self, model, settings):
        model.compile(optimizer="adam", loss="mse")

    def prepare_batch(self, images, labels, instance_classes=None, params=None):
        return images, (labels > 0)[..., None].astype("float32")

    def predict_tiles(self, model, images):
        import warnings

        import numpy as np
        from rasterio.features import rasterize, shapes

        from deepseg_core.contracts.model import Instance, TileResult

        results = []
        for brightness in np.asarray(model.predict_on_batch(images))[..., 0]:
            bright = (brightness > 1.0).astype("uint8")
            found = []
            with warnings.catch_warnings():  # pixel coordinates on purpose
                warnings.simplefilter("ignore")
                blobs = list(shapes(bright, mask=bright.astype(bool)))
                masks = [rasterize([g], out_shape=bright.shape, dtype="uint8").astype(bool)
                         for g, _ in blobs]
            for mask in masks:
                rows, cols = np.nonzero(mask)
                box = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
                found.append(Instance(1, 0.5 + 0.4 * float(mask.mean() < 0.5), mask, box))
            results.append(TileResult(instances=found))
        return results

    def custom_objects(self):
        return {}


@hookimpl
def deepseg_register_models(registry):
    registry.add_model("tinyfcn", TinyFCN())
    registry.add_model("tinyblobs", TinyBlobs())

"""Test-only model plugins (and the ``slow`` augmenter), and an untrained model saved as the
train stage would save it.

``tinyfcn`` and ``tinyblobs`` are Keras models (trainable). ``numpyfcn`` and ``numpyblobs``
predict the same way with NumPy alone and load their own saved file (the contract's optional
``load``): a child process that predicts with them never imports TensorFlow, so fault tests
whose fault is in the I/O, not in the model, start in a second instead of several.

In-process tests pass this module to ``load_plugins(extra=[("testmodels", models)])``;
subprocesses find it through the entry point in ``site/`` (``cli.environment(test_models=True)``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from deepseg_core import hookimpl
from deepseg_core.contracts.model import Instance, InstanceModel, SemanticModel, TileResult
from deepseg_core.errors import DeepSegError


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


def blobs(brightness: np.ndarray) -> list[TileResult]:
    """Instances of a batch of brightness tiles ``(n, rows, cols)``: connected pixels above
    1.0 (class 0), scored 0.9 when they cover under half the tile, else 0.5."""
    from rasterio.features import rasterize, shapes

    results = []
    for tile in brightness:
        bright = (tile > 1.0).astype("uint8")
        found = []
        with warnings.catch_warnings():  # pixel coordinates on purpose
            warnings.simplefilter("ignore")
            polygons = list(shapes(bright, mask=bright.astype(bool)))
            masks = [rasterize([g], out_shape=bright.shape, dtype="uint8").astype(bool)
                     for g, _ in polygons]
        for mask in masks:
            rows, cols = np.nonzero(mask)
            box = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
            found.append(Instance(1, 0.5 + 0.4 * float(mask.mean() < 0.5), mask, box))
        results.append(TileResult(instances=found))
    return results


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
        return blobs(np.asarray(model.predict_on_batch(images))[..., 0])

    def custom_objects(self):
        return {}


class TensorFlowBlobs(TinyBlobs):
    """TinyBlobs declared to run on TensorFlow only: the backend checks' model (every shipped
    model runs on both backends)."""

    backends = ("tensorflow",)


class NumpyNet:
    """A saved-and-loaded model of the NumPy plugins: named arrays, saved as an .npz archive
    (a zip, so the core's check of a weights file applies to it as to a .keras file)."""

    def __init__(self, **arrays):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}

    def save(self, path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, **self.arrays)

    @classmethod
    def load(cls, path) -> NumpyNet:
        with np.load(path) as data:
            return cls(**{k: data[k] for k in data.files})


class NumpyModel:
    """What the NumPy plugins share: no training, their own saved file."""

    def validate(self, nbands, nclasses, tilesize, params):
        unknown = sorted(set(params) - {"seed"})
        if unknown:
            raise DeepSegError(f"model parameter(s) {', '.join(unknown)} unknown; "
                               "expected some of: seed")

    def compile(self, model, settings):
        raise DeepSegError("the NumPy test models predict only; train tinyfcn or tinyblobs")

    def prepare_batch(self, images, labels, instance_classes=None, params=None):
        raise DeepSegError("the NumPy test models predict only")

    def custom_objects(self):
        return {}

    def load(self, path, compile=False):
        return NumpyNet.load(path)


class NumpyFCN(NumpyModel):
    """Two 3x3 convolutions with seeded random weights, then a softmax: TinyFCN's arithmetic
    (tile edges matter, so cores and blending do) in NumPy."""

    segmentation_type = "semantic"

    def build(self, nbands, nclasses, tilesize, params):
        self.validate(nbands, nclasses, tilesize, params)
        rng = np.random.default_rng(params.get("seed", 0))
        return NumpyNet(w1=rng.normal(0, 0.5, (3, 3, nbands, 4)), b1=rng.normal(0, 0.1, 4),
                        w2=rng.normal(0, 0.5, (3, 3, 4, nclasses)),
                        b2=rng.normal(0, 0.1, nclasses))

    def predict_tiles(self, model, images):
        a = model.arrays
        x = np.maximum(conv3x3(images.astype("float64"), a["w1"], a["b1"]), 0)
        logits = conv3x3(x, a["w2"], a["b2"])
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs = (e / e.sum(axis=-1, keepdims=True)).astype("float32")
        return [TileResult(probabilities=p) for p in probs]


def conv3x3(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A 'same' 3x3 convolution of ``(n, rows, cols, in)`` with ``(3, 3, in, out)``."""
    rows, cols = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for i in range(3):
        for j in range(3):
            out += padded[:, i:i + rows, j:j + cols] @ kernel[i, j]
    return out + bias


class NumpyBlobs(NumpyModel):
    """TinyBlobs in NumPy: the band mean's bright connected blobs are the instances."""

    segmentation_type = "instance"

    def build(self, nbands, nclasses, tilesize, params):
        self.validate(nbands, nclasses, tilesize, params)
        return NumpyNet(weights=np.full(nbands, 1 / nbands))

    def predict_tiles(self, model, images):
        return blobs(images.astype("float32") @ model.arrays["weights"].astype("float32"))


class Slow:
    """A test-only augmenter that changes nothing and takes ``seconds`` per tile: an epoch of
    many tiny steps lasts about as long on an idle machine as on a busy one (time limits)."""

    def __init__(self, seconds: float = 0.1) -> None:
        self.seconds = float(seconds)

    def __call__(self, image, label, rng):
        time.sleep(self.seconds)
        return image, label


@hookimpl
def deepseg_register_augmenters(registry):
    registry.add_augmenter("slow", Slow)


@hookimpl
def deepseg_register_models(registry):
    registry.add_model("tinyfcn", TinyFCN())
    registry.add_model("tinyblobs", TinyBlobs())
    registry.add_model("tfblobs", TensorFlowBlobs())
    registry.add_model("numpyfcn", NumpyFCN())
    registry.add_model("numpyblobs", NumpyBlobs())


def save_untrained(exp, registry, image=None, seed: int = 0):
    """Save an untrained model of ``exp`` and its model.json as the train stage would, with
    the statistics of the valid pixels of ``image`` (the experiment's first image by default);
    returns (model, its model.json: a ModelInfo)."""
    import rasterio

    from deepseg_core.data.bandstats import BandStats
    from deepseg_core.models.folder import model_info

    plugin = registry.get("model", exp.model.name)
    if not callable(getattr(plugin, "load", None)):  # a Keras model
        import keras

        keras.utils.set_random_seed(seed)
    with rasterio.open(image or exp.images[0].path) as src:
        data = src.read()
        valid = ~np.all(data == src.nodata, axis=0) if src.nodata is not None else None
        crs, res = src.crs.to_wkt(), src.res[0]
    stats = BandStats(data.shape[0])
    stats.update(data, valid)
    model = plugin.build(exp.nbands, len(exp.classes), exp.tilesize, exp.model.params)
    model_dir = exp.outdir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / "best.keras")
    info = model_info(exp, stats.as_dict(), [], crs, res)
    info.write(model_dir / "model.json")
    return model, info

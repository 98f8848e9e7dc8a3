"""Hook implementations of the deepseg_maskrcnn plugin: registers the ``maskrcnn`` model.

Keras is imported inside the methods only; the model is keras.ops throughout (TensorFlow and
JAX), with static shapes.
"""

from __future__ import annotations

import numpy as np

from deepseg_core import hookimpl
from deepseg_core.contracts.model import InstanceModel, TileResult, TrainSettings
from deepseg_core.errors import DeepSegError

from .config import DEFAULTS, check_params

CLIP_NORM = 5.0  # global gradient norm clipping


class MaskRCNNPlugin(InstanceModel):
    """Mask R-CNN instance segmentation (FPN on a ResNet, EfficientNet-Lite0 or VGG16 backbone)
    for any number of bands."""

    segmentation_type = "instance"

    def validate(self, nbands, nclasses, tilesize, params):
        """Raise DeepSegError naming the first parameter the model cannot take."""
        check_params(params, tilesize, nbands, nclasses)

    def build(self, nbands, nclasses, tilesize, params):
        """A new uncompiled MaskRCNN model: ``params['backbone_weights']`` (the encoder's file)
        is loaded into the backbone, then ``params['weights']`` by layer name."""
        merged = check_params(params, tilesize, nbands, nclasses)
        from deepseg_core.models.encoders import load_encoder_weights
        from deepseg_core.models.pretrained import show

        from .model import MaskRCNN
        from .weights import load_by_name

        model = MaskRCNN(nbands, nclasses, merged, name="maskrcnn")
        if merged["backbone_weights"]:
            load_encoder_weights(model, merged["backbone"], merged["backbone_weights"], nbands,
                                 "backbone_weights")
        if merged["weights"]:
            show(load_by_name(model, merged["weights"]))
        return model

    def compile(self, model, settings: TrainSettings):
        """Attach the optimizer (adam, adamw or sgd with momentum), clipping the gradient norm."""
        import keras

        name = (settings.optimizer or "adam").lower()
        rate = settings.learning_rate
        if name == "adam":
            optimizer = keras.optimizers.Adam(rate, global_clipnorm=CLIP_NORM)
        elif name == "adamw":
            optimizer = keras.optimizers.AdamW(rate, global_clipnorm=CLIP_NORM)
        elif name == "sgd":
            optimizer = keras.optimizers.SGD(rate, momentum=0.9, global_clipnorm=CLIP_NORM)
        else:
            raise DeepSegError(f"optimizer {settings.optimizer!r} unknown to maskrcnn; "
                               f"expected adam, adamw or sgd")
        # TensorFlow: no XLA on CPU (op determinism); JAX: one compiled step (eager is op by op)
        model.compile(optimizer=optimizer, jit_compile=keras.backend.backend() == "jax")

    def prepare_batch(self, images, labels, instance_classes=None, params=None):
        """``(images, targets)``: boxes, classes and slot maps derived from the instance maps,
        at most the model's ``max_instances`` per tile."""
        from .batch import instance_targets

        limit = {**DEFAULTS, **(params or {})}["max_instances"]
        targets = instance_targets(labels, instance_classes, limit)
        return np.asarray(images, np.float32), targets

    def predict_tiles(self, model, images) -> list[TileResult]:
        """Instances (box-sized masks at ``Instance.origin``) found in each tile of ``images``."""
        from .unmold import tile_results

        images = np.asarray(images, np.float32)
        outputs = model.detect(images)
        threshold = model.config_params["mask_threshold"]
        return tile_results(outputs, images.shape[1], images.shape[2], threshold)

    def custom_objects(self):
        """The plugin's registered keras classes by name."""
        from .detection import DetectionLayer
        from .model import MaskRCNN
        from .proposals import ProposalLayer
        from .roialign import PyramidROIAlign
        from .targets import DetectionTargetLayer

        classes = (MaskRCNN, ProposalLayer, PyramidROIAlign, DetectionTargetLayer,
                   DetectionLayer)
        return {cls.__name__: cls for cls in classes}


@hookimpl
def deepseg_register_models(registry):
    """Register the ``maskrcnn`` instance segmentation model."""
    registry.add_model("maskrcnn", MaskRCNNPlugin())

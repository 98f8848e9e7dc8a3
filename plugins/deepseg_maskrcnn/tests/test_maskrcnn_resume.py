"""Training resumed from a saved model is the uninterrupted training, bit for bit on CPU, on
the session's backend (``--backend jax`` runs it on JAX).

The training targets' random choices are a function of the optimizer's step (sampling.py), a
variable the checkpoint holds, so the resumed steps draw what the uninterrupted ones drew.
"""

import numpy as np
from crowns import crown_tiles
from deepseg_maskrcnn.plugin import MaskRCNNPlugin

from deepseg_core.contracts.model import TrainSettings
from deepseg_core.models.folder import load_saved

PARAMS = {"backbone": "resnet_tiny", "fpn_channels": 16, "head_fc": 32, "mask_channels": 8,
          "anchor_scales": [8, 16, 32, 64, 128], "rpn_train_anchors": 64, "pre_nms_limit": 300,
          "proposals_train": 100, "proposals_infer": 60, "rois_per_image": 16}


def batches(plugin):
    images, labels = crown_tiles(8, seed=5, size=64)
    return [plugin.prepare_batch(images[i:i + 2], labels[i:i + 2], None, PARAMS)
            for i in range(0, 8, 2)]


def fresh(plugin):
    import keras

    from deepseg_core.training.distributed import backend_module

    keras.utils.set_random_seed(0)
    backend_module().deterministic(False)  # as training on CPU runs
    model = plugin.build(4, 2, 64, PARAMS)
    plugin.compile(model, TrainSettings(nclasses=2, learning_rate=1e-3))
    return model


def test_a_resumed_training_is_the_uninterrupted_one_bit_for_bit(tmp_path):
    plugin = MaskRCNNPlugin()
    data = batches(plugin)
    straight = fresh(plugin)
    for x, y in data:
        straight.train_on_batch(x, y)
    first = fresh(plugin)
    for x, y in data[:2]:
        first.train_on_batch(x, y)
    first.save(tmp_path / "last.keras")
    resumed = load_saved(plugin, tmp_path / "last.keras", compile=True)  # as training.resume
    assert int(np.asarray(resumed.optimizer.iterations)) == 2
    logs = [resumed.train_on_batch(x, y, return_dict=True) for x, y in data[2:]]
    assert all(np.isfinite(log["loss"]) for log in logs)
    moved = [not np.array_equal(a, b) for a, b in zip(first.get_weights(),
                                                       resumed.get_weights())]
    assert sum(moved) > 10  # the resumed steps trained
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)

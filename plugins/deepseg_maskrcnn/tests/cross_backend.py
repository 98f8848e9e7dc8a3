"""One side of the TensorFlow-vs-JAX check (test_maskrcnn_backends.py), run as a process
on the backend KERAS_BACKEND names:

    python cross_backend.py FOLDER [WEIGHTS]

Builds the tiny model of 64 px tiles (seeded, its weights written to
FOLDER/<backend>.initial.weights.h5; or loads ``WEIGHTS``, such a file from another backend),
then writes to FOLDER/<backend>.npz its detections on crown tiles, the outputs of its layers
(:func:`layer_outputs`), its losses on the tiles' targets and one SGD step's logs, and
FOLDER/<backend>.weights.h5 after that step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import deepseg_core  # noqa: F401  (its TensorFlow settings before Keras starts, as in pytest)

TINY = {"backbone": "resnet_tiny", "fpn_channels": 16, "head_fc": 32, "mask_channels": 8,
        "anchor_scales": [8, 16, 32, 64, 128], "rpn_train_anchors": 64, "pre_nms_limit": 300,
        "proposals_train": 100, "proposals_infer": 60, "rois_per_image": 16,
        "detection_min_confidence": 0.3, "max_instances": 20}
LOSSES = ("rpn_class_loss", "rpn_box_loss", "class_loss", "box_loss", "mask_loss")


def layer_outputs(model, x, y) -> dict:
    """The network's float outputs, and each layer with discrete choices (top-k, NMS, sampling)
    run on the same well-separated inputs on both backends (scores on a 1e-3 grid, no ties)."""
    from deepseg_maskrcnn.targets import rpn_targets
    from keras import ops

    rng = np.random.default_rng(7)
    out = {}
    pyramid, logits, deltas, anchors = model._pyramid(ops.convert_to_tensor(x), False)
    out["rpn_logits"], out["rpn_deltas"] = logits, deltas
    count = anchors.shape[0]
    fixed_logits = (rng.permutation(count * 2)[:count].reshape(1, count) * 1e-3 - 2.0)
    fixed_logits = np.repeat(fixed_logits, 2, 0).astype("float32")
    fixed_deltas = rng.normal(0, 0.5, (2, count, 4)).astype("float32")
    proposals = model.infer_proposals(fixed_logits, fixed_deltas, anchors)
    out["proposals"] = proposals
    head_logits, head_deltas = model._heads(proposals, x, pyramid, False)
    out["head_logits"], out["head_deltas"] = head_logits, head_deltas
    nrois = proposals.shape[1]
    probs = rng.permutation(nrois * 2).reshape(2, nrois)[..., None] / (4.0 * nrois) + 0.25
    probs = np.concatenate([1 - probs, probs], -1).astype("float32")
    boxes, scores, class_ids, counts = model.detection(proposals, probs, head_deltas)
    out.update(det_boxes=boxes, det_scores=scores, det_class_ids=class_ids, det_count=counts)
    out["mask_logits"] = model._masks(boxes, x, pyramid, False)
    size = np.array([64, 64, 64, 64], "float32")
    gt = y["gt_boxes"] / size
    labels, anchor_deltas = rpn_targets(anchors, gt, y["gt_class_ids"] > 0, 64, 0.5, step=5)
    out["rpn_labels"], out["rpn_targets"] = labels, anchor_deltas
    rois, classes, roi_deltas, sampled, masks = model.target_layer(
        proposals, gt, y["gt_class_ids"], y["gt_instances"], step=5)
    out.update(rois=rois, roi_classes=classes, roi_deltas=roi_deltas, sampled=sampled,
               mask_targets=masks)
    return {k: ops.convert_to_numpy(v) for k, v in out.items()}


def spread(model) -> None:
    """Scale the objectness and class logits of the untrained model 50x: its scores spread
    from about 0.5 +- 0.01 to 0.5 +- 0.3, so the two backends' rounding (1e-7) reorders no
    nearly-equal scores in the top-k and NMS choices the end-to-end comparison goes through."""
    for layer in (model.feature_net.get_layer("rpn_class_raw"),
                  model.box_head.get_layer("mrcnn_class_logits")):
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 50.0, bias])


def main(folder: Path, weights: str | None) -> None:
    import keras
    from crowns import crown_tiles
    from deepseg_maskrcnn.plugin import MaskRCNNPlugin

    from deepseg_core.contracts.model import TrainSettings

    keras.utils.set_random_seed(0)
    plugin = MaskRCNNPlugin()
    model = plugin.build(4, 2, 64, TINY)
    backend = keras.backend.backend()
    if weights:
        model.load_weights(weights)
    else:
        spread(model)
        model.save_weights(folder / f"{backend}.initial.weights.h5")
    images, labels = crown_tiles(2, seed=3, size=64)
    x, y = plugin.prepare_batch(images, labels, None, TINY)
    found = model.detect(x)
    losses = model.compute_losses(x, y, training=False)
    parts = layer_outputs(model, x, y)
    plugin.compile(model, TrainSettings(nclasses=2, learning_rate=1e-3, optimizer="sgd"))
    logs = model.train_on_batch(x, y, return_dict=True)
    model.save_weights(folder / f"{backend}.weights.h5")
    np.savez(folder / f"{backend}.npz", **found, **parts,
             losses=np.array([float(losses[n]) for n in LOSSES]),
             logs=np.array([float(logs[n]) for n in LOSSES]))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)

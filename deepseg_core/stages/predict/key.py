"""What a prediction depends on: the key of its partials, shard candidates and published
outputs (docs/crash-safety.md, "Outputs belong to their inputs").

Every commit record keeps the key it was made under; work of another key is never resumed,
merged or reused, and the message says which part changed:

``inputs``  each image source's files by their fingerprint (deepseg_core.io.fingerprint: path,
            size, mtime, a sampled content hash), with its bands, nodata, resampling, reproject
``grid``    the prediction grid's CRS, transform and size
``model``   the content hash of the weights and of model.json (normalization, classes, run)
``tiles``   tiler, tile size, overlap, and the batch size (batches are aligned so that a
            resumed run feeds the model the same batches; another batch size may change the
            last bits of the results); blending, the stripe width (it orders the tiles)
``output``  blending, probabilities, the number of classes; for instances the score threshold
            and the stitching options
``runtime`` the Keras backend and ``predict.jit_compile``, where they are not TensorFlow and
            auto (another backend's or XLA's arithmetic may change the last bits)
``publish`` (published outputs only) format, class names and colours, vectorization

Reader threads, queue depth and commit interval change no result and are not in the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

from ...backend import DEFAULT, current
from ...config import expand_paths
from ...io.fingerprint import content_hash, fingerprint

if TYPE_CHECKING:
    from ...data.stack import ImageStack
    from ...models.folder import TrainedModel
    from .settings import Settings

Key = dict[str, Any]


def prediction_key(settings: Settings, stack: ImageStack, trained: TrainedModel) -> Key:
    """The key of every partial and shard of this run (a shard adds its number)."""
    s, grid = settings, stack.grid
    inputs = [{"files": [fingerprint(p) for p in expand_paths(src.path)],
               **src.model_dump(mode="json", exclude={"path", "name"})} for src in s.images]
    info = json.dumps(dataclasses.asdict(trained.info), sort_keys=True).encode()
    output: dict[str, Any] = {"blend": s.blend, "probabilities": s.probabilities,
                              "classes": len(s.classes)}
    if s.instance:
        output.update(score_threshold=s.score_threshold, stitch=dataclasses.asdict(s.stitch))
    runtime: dict[str, Any] = {}
    if current() != DEFAULT:
        runtime["backend"] = current()
    if s.jit_compile != "auto":
        runtime["jit_compile"] = s.jit_compile
    return {**({"runtime": runtime} if runtime else {}), "inputs": inputs,
            "grid": {"crs": grid.crs, "transform": list(grid.transform)[:6],
                     "width": grid.width, "height": grid.height},
            "model": {"weights": content_hash(trained.weights),
                      "info": hashlib.sha256(info).hexdigest()},
            "tiles": {"tiler": s.tiler, "tilesize": s.tilesize, "overlap": s.overlap,
                      "batch_size": s.batch_size,
                      **({"stripe_width": s.stripe_width} if s.blend else {})},
            "output": output}


def publish_key(settings: Settings, key: Key) -> Key:
    """The key of the published outputs: ``key`` and how the outputs are written."""
    s = settings
    vectorize = s.vectorize.model_dump(mode="json") if s.vectorize is not None else None
    return {**key, "publish": {"format": s.format, "classes": list(s.classes),
                               "colours": {str(k): list(v) for k, v in s.colours.items()},
                               "vectorize": vectorize}}


def digest(key: Key | None) -> str:
    """A short name of ``key`` for messages."""
    if key is None:
        return "none"
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def changed(old: Key | None, new: Key) -> str:
    """Which parts of the key differ, in words: 'inputs, model weights'."""
    if not isinstance(old, dict):
        return "made by an older deepseg"
    parts = [part for part in new if old.get(part) != new.get(part)]
    parts += [part for part in old if part not in new]
    names = {"inputs": "input images", "grid": "grid", "model": "model", "tiles": "tiles",
             "output": "output settings", "publish": "output format",
             "shard": "shard count", "runtime": "Keras backend or jit_compile"}
    return ", ".join(names.get(p, p) for p in parts) or "nothing"


def mismatch(what: str, old: Key | None, new: Key) -> str:
    """One phrase: what was made under which key, this run's key, and what changed."""
    return (f"{what} was made from other inputs or settings (its key {digest(old)}, this "
            f"run's {digest(new)}; changed: {changed(old, new)})")

"""The demo's experiment.yaml: commented, valid, and a starting point for a user's own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .scene import CLASSES

TEMPLATE = """\
# DeepSeg demo experiment, written by `deepseg demo` (scene {size} x {size} px, seed {seed}).
# Edit it and run every stage again with:  deepseg run {path}
# Relative paths are relative to this file. Every key: docs/experiment.md

name: demo                       # outputs go to <workdir>/demo/
workdir: .
segmentation_type: semantic
stages: dataprep,train,crossval,predict

tilesize: 64                     # tile side in pixels (32 m)
overlap: 16                      # pixels shared by neighbouring tiles
nbands: 4                        # red, green, blue, near infrared

images:
  - path: scene.tif              # synthetic NZTM (EPSG:2193) scene at 0.5 m

labels:
  path: labels.gpkg              # exact polygons with a 'class' field; no polygon = background
  class_field: class

classes:                         # index 0 is background; 'value' = the 'class' field's value
{classes}
folds: 3                         # spatial folds: crossval trains on 2, tests on the third

model:
  name: unet64                   # `deepseg plugins` lists the registered models
  filters: 8                     # small, for a CPU; real data wants 32-64
  depth: 3

epochs: {epochs}
learning_rate: 0.015             # high for a tiny model; 0.001 suits larger ones
training:
  batch_size: 8                  # tiles per step (larger batches keep both CPU cores busy)
  lr_schedule: cosine            # the rate falls to 1/50 of learning_rate by the last step
  warmup_epochs: 1               # rising from ~0 over the first epoch: no early blow-up
  loss: ce+dice                  # ce | dice | ce+dice
  class_weights: null            # 'auto': rare classes weigh as much as frequent ones
  seed: {seed}

augmentation:                    # lossless flips/rotations and a little radiometric jitter
  - flips
  - {{name: jitter, brightness: 0.05, contrast: 0.05, noise: 0.01}}

crossval:
  folds: {crossval_folds}               # folds to run (all three give a mean and a spread)

predict:
  output: predictions/prediction.tif
  vectorize: {{enabled: {vectors}, min_area: 2.0, simplify: 0.25}}
"""


def write_experiment(folder: str | Path, size: int, epochs: int, seed: int = 0,
                     vectors: bool = True, crossval_folds: Sequence[int] = (0, 1, 2)) -> Path:
    """Write ``folder/experiment.yaml`` for the scene of ``make_scene(folder, size, seed)``."""
    path = Path(folder) / "experiment.yaml"
    classes = "".join(f'  - {{name: {name}, color: "{colour}", value: {name}}}\n'
                      for name, colour in CLASSES)
    path.write_text(TEMPLATE.format(size=size, seed=seed, path=path, classes=classes,
                                    epochs=epochs, crossval_folds=list(crossval_folds),
                                    vectors=str(vectors).lower()))
    return path

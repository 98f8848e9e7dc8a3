"""The stages' sections of experiment.yaml: store, training, predict (with vectorize), crossval."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import ImageSource, Strict
from .safety import escapes


class Store(Strict):
    path: str | None = Field(None, description="HDF5 store (default: <workdir>/stores/<hash>.h5)")
    compression: Literal["gzip", "lzf", "none"] = Field("gzip", description="tile compression")
    replace: bool = Field(False, description="let dataprep overwrite a store at 'path' that "
                                             "was built from other data settings")


class Training(Strict):
    batch_size: int = Field(8, gt=0, description="tiles per batch and replica (GPU or worker)")
    loss: Literal["ce", "dice", "ce+dice"] = Field("ce+dice", description="semantic loss")
    class_weights: Literal["auto"] | list[float] | None = Field(
        None, description="'auto' (inverse frequency from the store) or one weight per class")
    validation_folds: list[int] | None = Field(None, description="folds held out for "
                                               "validation (default: the last fold)")
    seed: int = Field(42, description="seed for weights, shuffling and augmentation")
    resume: bool | Literal["auto"] = Field(
        False, description="false: a fresh run (the previous run's model/ and logs/ are first "
        "moved to previous/, one earlier run kept); true: continue the committed run of these "
        "settings (epochs may be raised) from its last checkpoint, else stop saying what "
        "differs; auto: continue it when there is one, else a fresh run (for jobs that may be "
        "resubmitted)")
    early_stopping: int | None = Field(None, gt=0, description="patience in epochs")
    reduce_lr: int | None = Field(None, gt=0, description="patience before halving the rate")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="constant: learning_rate throughout (reduce_lr may halve it); "
        "cosine: from learning_rate down to a fiftieth of it along a half cosine over all steps")
    warmup_epochs: float = Field(0.0, ge=0, description="epochs of linear warm-up from "
                                 "nearly 0 to learning_rate before the schedule")
    monitor: str = Field("val_miou", description="metric that picks the best checkpoint")
    mixed_precision: bool | Literal["float16", "bfloat16"] = Field(
        False, description="true or float16: float16 compute on GPUs (float32, with a "
        "warning, without one); bfloat16: bfloat16 compute on any device (GPUs from the A100 "
        "on, and CPUs); weights stay float32")
    jit_compile: bool | Literal["auto"] = Field(
        "auto", description="XLA-compile the training step: auto (Keras' choice: always on "
        "JAX; on TensorFlow only on GPUs, since op determinism is on on CPU), true or false")
    distribute: Literal["none", "mirrored", "multiworker"] = Field(
        "none", description="none; mirrored: every GPU of the node (TensorFlow's "
        "MirroredStrategy; JAX: keras.distribution.DataParallel); multiworker: one process "
        "per worker of a Slurm step (srun), or of TF_CONFIG (TensorFlow) or "
        "JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/JAX_PROCESS_ID (JAX) (true/false: "
        "mirrored/none)")
    communication: Literal["auto", "ring", "nccl"] = Field(
        "auto", description="multiworker on TensorFlow: how workers exchange gradients "
        "(MultiWorkerMirroredStrategy's CommunicationOptions): auto (TensorFlow picks), ring "
        "(gRPC ring all-reduce) or nccl (NVIDIA's NCCL, GPUs only); JAX picks its own")
    scale_learning_rate: bool = Field(False, description="multiply learning_rate by the "
                                      "replicas (the global batch is batch_size x replicas)")
    workers: int = Field(0, ge=0, description="data-loading processes of each training process, "
                         "in every distribute mode (0: in the main thread)")
    steps_per_epoch: int | None = Field(None, gt=0, description="limit batches per epoch")

    @model_validator(mode="after")
    def _one_rate_setter(self):
        if self.lr_schedule == "cosine" and self.reduce_lr:
            raise ValueError("reduce_lr cannot be combined with lr_schedule: cosine "
                             "(the schedule sets the rate at every step); drop one of them")
        return self

    @field_validator("distribute", mode="before")
    @classmethod
    def _distribute(cls, value):
        if isinstance(value, bool):  # experiments written before multiworker existed
            return "mirrored" if value else "none"
        return value


class Vectorize(Strict):
    enabled: bool = Field(False, description="write polygons to a GeoPackage")
    min_area: float = Field(0.0, ge=0, description="drop polygons smaller than this (map units²)")
    simplify: float = Field(0.0, ge=0, description="simplification tolerance (map units)")
    skip_classes: list[int] = Field([0], description="classes not vectorized")


class Predict(Strict):
    images: list[ImageSource] | None = Field(None, description="rasters to predict "
                                             "(default: the training images)")
    output: str = Field("predictions/prediction.tif", description="output raster: relative "
                        "to <workdir>/<name>/ and inside it, or an absolute path")
    format: str | None = Field(None, description="registered writer (default: from suffix)")
    batch_size: int | None = Field(None, gt=0, description="default: training.batch_size")
    probabilities: Literal["none", "uint8", "float32"] = Field(
        "none", description="also write per-class probabilities")
    blend: bool = Field(False, description="blend overlapping probabilities instead of cores")
    stripe_width: int = Field(8192, ge=16, description="blending works through the raster in "
                              "vertical stripes of this many px: its memory grows with the "
                              "stripe, not the raster; tiles across a stripe edge are "
                              "predicted once per stripe")
    queue_depth: int = Field(4, gt=0, description="batches read ahead / written behind")
    jit_compile: bool | Literal["auto"] = Field(
        "auto", description="XLA-compile the model's prediction: auto (Keras' choice), true "
        "or false")
    readers: int = Field(2, gt=0, description="threads reading tiles at once, each with its "
                         "own file handles (more feed a GPU faster)")
    commit_seconds: float = Field(5.0, ge=0, description="commit finished tiles to disk at "
                                  "least this often: a killed run loses at most this much work")
    merge_workers: int | None = Field(None, gt=0, description="threads assembling the output "
                                      "(deepseg merge; the end of an unsharded run): default "
                                      "the CPUs the process was given (its CPU affinity, at "
                                      "most SLURM_CPUS_PER_TASK); the same output for any")
    vectorize: Vectorize = Field(default_factory=Vectorize, description="polygon output")
    score_threshold: float = Field(0.5, ge=0, le=1, description="instances: minimum score")
    merge_iou: float = Field(0.5, ge=0, le=1, description="instances: IoU duplicate threshold")
    merge_ios: float = Field(0.8, ge=0, le=1, description="instances: intersection over "
                                                         "smaller duplicate threshold")

    @field_validator("output")
    @classmethod
    def _inside(cls, value):
        if not os.path.isabs(value) and escapes(value):  # an absolute one is named on purpose
            raise ValueError(f"{value!r} leads out of <workdir>/<name>/; expected a path inside "
                             "it such as 'predictions/map.tif', or an absolute path")
        return value


class CrossVal(Strict):
    folds: list[int] | None = Field(None, description="folds to run (default: all)")
    metrics: list[str] | None = Field(None, description="metric plugins (default: pycm for "
                                                        "semantic, pycm+instances for instance)")
    error_maps: bool = Field(True, description="write TP/FP/TN/FN error-map rasters")
    positive_class: int = Field(1, description="class of interest for binary error maps")

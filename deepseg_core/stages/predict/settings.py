"""The experiment's prediction settings: the few values of the experiment that prediction
uses, so the layers below receive them instead of the whole experiment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...contracts.raster import parse_colour
from ...inference.pipeline import Flow
from ...io.threads import available_cpus
from .instances.options import StitchOptions

if TYPE_CHECKING:
    from ...config.base import ImageSource
    from ...config.schema import Experiment
    from ...config.sections import Vectorize


@dataclass(frozen=True)
class Settings:
    """The experiment's prediction settings."""

    source: Path | None  # the experiment file, for messages
    output: Path
    images: list[ImageSource]
    images_key: str
    crs: str | None
    resolution: float | None
    tiler: str
    tilesize: int
    overlap: int
    classes: tuple[str, ...]
    colours: dict[int, tuple[int, int, int, int]]
    instance: bool
    blend: bool = False
    probabilities: str = "none"
    batch_size: int = 8
    queue_depth: int = 4
    readers: int = 2
    jit_compile: bool | str = "auto"
    format: str | None = None
    commit_seconds: float = 5.0
    merge_workers: int = 1  # threads assembling the outputs
    stripe_width: int = 8192  # blending: px of a vertical stripe (writers.BlendWriter)
    score_threshold: float = 0.5
    stitch: StitchOptions = StitchOptions()  # instances: iou, ios
    vectorize: Vectorize | None = None  # the experiment's predict.vectorize section

    @property
    def flow(self) -> Flow:
        """How tiles flow past the model."""
        return Flow(self.batch_size, self.queue_depth, self.readers, self.jit_compile)

    @classmethod
    def of(cls, exp: Experiment) -> Settings:
        """The prediction settings of ``exp``."""
        p = exp.predict
        out = Path(p.output)
        return cls(source=exp.source, output=out if out.is_absolute() else exp.outdir / out,
                   images=p.images or exp.images or [],
                   images_key="predict.images" if p.images else "images", crs=exp.crs,
                   resolution=exp.resolution, tiler=exp.tiler, tilesize=exp.tilesize,
                   overlap=exp.overlap, classes=tuple(exp.class_names),
                   colours={i: parse_colour(c.color) for i, c in enumerate(exp.classes)},
                   instance=exp.segmentation_type == "instance", blend=p.blend,
                   probabilities=p.probabilities,
                   batch_size=p.batch_size or exp.training.batch_size,
                   queue_depth=p.queue_depth, readers=p.readers, jit_compile=p.jit_compile,
                   format=p.format,
                   commit_seconds=p.commit_seconds, stripe_width=p.stripe_width,
                   merge_workers=p.merge_workers or available_cpus(),
                   score_threshold=p.score_threshold,
                   stitch=StitchOptions(iou=p.merge_iou, ios=p.merge_ios),
                   vectorize=p.vectorize)

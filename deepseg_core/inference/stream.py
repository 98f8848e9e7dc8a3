"""A model streamed over a list of tile windows, the one way the predict and crossval stages
infer: the pipeline (reader threads, batched inference, a writer thread), a progress bar and
one line saying what it did."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..backend import current, set_jit
from ..io.progress import Progress
from .pipeline import Consume, Flow, Read, TileJob, run_pipeline
from .readers import TileReader

if TYPE_CHECKING:
    from ..contracts.model import KerasModel, ModelPlugin, TileResult
    from ..contracts.raster import Window
    from ..data.stack import ImageStack
    from ..models.folder import TrainedModel
    from ..plugins.registry import Registry

log = logging.getLogger(__name__)


class TileRunner(Protocol):
    """``run(consume, start)``: a trained model streamed over a shard's tiles."""

    def __call__(self, consume: Consume, start: int = 0) -> None: ...


def stream(plugin: ModelPlugin, model: KerasModel, read: Read, windows: Sequence[Window],
           consume: Consume, flow: Flow, label: str, start: int = 0) -> None:
    """Predict ``windows[start:]`` with ``plugin.predict_tiles(model, ...)``; ``read(window)``
    gives (normalized image, valid), ``consume(job)`` receives each tile in order."""
    set_jit(model, flow.jit_compile)
    bar = Progress(len(windows) - start, label)
    counts = {"tiles": 0, "skipped": 0}
    waits: dict[str, float] = {}
    first: list[float] = []  # when the first tiles came: a compiled model compiles first

    def write(tile: TileJob) -> None:
        consume(tile)
        if not first:
            first.append(bar.elapsed)
        bar.update()
        counts["tiles"] += 1
        counts["skipped"] += tile.result is None

    def predict(images: np.ndarray) -> list[TileResult]:
        return plugin.predict_tiles(model, images)

    run_pipeline(read, windows, predict, write, flow, start=start, waits=waits)
    n, skipped = counts["tiles"], counts["skipped"]
    log.info(f"{label}: {n - skipped} tiles predicted, {skipped} all-nodata tiles "
             f"skipped, {bar.elapsed:.1f} s ({n / max(bar.elapsed, 1e-9):.1f} tiles/s; "
             f"the model waited {waits.get('model_waited_s', 0.0):.1f} s for "
             f"{flow.readers} reader{'s' * (flow.readers != 1)}; the first tiles after "
             f"{first[0] if first else 0.0:.1f} s)")


def tile_runner(registry: Registry, trained: TrainedModel, stack: ImageStack,
                windows: Sequence[Window], flow: Flow, label: str) -> TileRunner:
    """``run(consume, start)``: stream ``windows[start:]`` of the image ``stack`` through the
    trained model (deepseg_core.models.folder.TrainedModel) into ``consume``."""
    plugin, model = trained.load(registry)
    trained_on, running = trained.info.backend or "tensorflow", current()
    if trained_on != running:  # a saved model is backend-neutral
        log.info(f"{label}: the model was trained on {trained_on}, predicting on {running}")

    def run(consume: Consume, start: int = 0) -> None:
        read = TileReader(stack, trained.info.stats)
        try:
            stream(plugin, model, read, windows, consume, flow, label, start)
        finally:
            read.close()

    return run

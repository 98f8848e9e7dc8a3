"""A model streamed over a list of tile windows, the one way the predict and crossval stages
infer: the pipeline (reader threads, batched inference, a writer thread), a progress bar and
one line saying what it did."""

from __future__ import annotations

import logging

from ..io.progress import Progress
from .pipeline import Flow, run_pipeline
from .readers import TileReader

log = logging.getLogger(__name__)


def stream(plugin, model, read, windows, consume, flow: Flow, label: str,
           start: int = 0) -> None:
    """Predict ``windows[start:]`` with ``plugin.predict_tiles(model, ...)``; ``read(window)``
    gives (normalized image, valid), ``consume(job)`` receives each tile in order."""
    bar = Progress(len(windows) - start, label)
    counts, waits = {"tiles": 0, "skipped": 0}, {}

    def write(tile):
        consume(tile)
        bar.update()
        counts["tiles"] += 1
        counts["skipped"] += tile.result is None

    run_pipeline(read, windows, lambda x: plugin.predict_tiles(model, x), write, flow,
                 start=start, waits=waits)
    n, skipped = counts["tiles"], counts["skipped"]
    log.info(f"{label}: {n - skipped} tiles predicted, {skipped} all-nodata tiles "
             f"skipped, {bar.elapsed:.1f} s ({n / max(bar.elapsed, 1e-9):.1f} tiles/s; "
             f"the model waited {waits.get('model_waited_s', 0.0):.1f} s for "
             f"{flow.readers} reader{'s' * (flow.readers != 1)})")


def tile_runner(registry, trained, stack, windows, flow: Flow, label: str):
    """``run(consume, start)``: stream ``windows[start:]`` of the image ``stack`` through the
    trained model (deepseg_core.models.folder.TrainedModel) into ``consume``."""
    plugin, model = trained.load(registry)

    def run(consume, start=0):
        read = TileReader(stack, trained.info.stats)
        try:
            stream(plugin, model, read, windows, consume, flow, label, start)
        finally:
            read.close()

    return run

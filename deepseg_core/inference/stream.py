"""The tile runner: a trained model streamed over a list of windows (read, infer, write)."""

from __future__ import annotations

import logging

from ..io.progress import Progress
from .pipeline import run_pipeline
from .readers import TileReader

log = logging.getLogger(__name__)


def tile_runner(registry, trained, stack, windows, settings, label: str):
    """``run(consume, start)``: stream ``windows[start:]`` through the model into ``consume``."""
    plugin, model = trained.load(registry)

    def run(consume, start=0):
        bar = Progress(len(windows) - start, label)
        counts = {"tiles": 0, "skipped": 0}

        def write(tile):
            consume(tile)
            bar.update()
            counts["tiles"] += 1
            counts["skipped"] += tile.result is None

        read, waits = TileReader(stack, trained.info.stats), {}
        try:
            run_pipeline(read, windows, start, lambda x: plugin.predict_tiles(model, x), write,
                         settings.batch_size, settings.queue_depth, readers=settings.readers,
                         waits=waits)
        finally:
            read.close()
        n, skipped = counts["tiles"], counts["skipped"]
        log.info(f"{label}: {n - skipped} tiles predicted, {skipped} all-nodata tiles "
                 f"skipped, {bar.elapsed:.1f} s ({n / max(bar.elapsed, 1e-9):.1f} tiles/s; "
                 f"the model waited {waits.get('model_waited_s', 0.0):.1f} s for "
                 f"{settings.readers} reader{'s' * (settings.readers != 1)})")

    return run

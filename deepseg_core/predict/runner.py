"""The tile runner: a trained model streamed over a list of windows (read, infer, write)."""

from __future__ import annotations

import click
import numpy as np

from ..inference.pipeline import run_pipeline
from ..progress import Progress
from ..stats import normalizer


def tile_runner(registry, info: dict, weights, stack, windows, settings, label: str,
                progress: bool):
    """``run(consume, start)``: stream ``windows[start:]`` through the model into ``consume``."""
    from ..model_files import load_model

    plugin, model = load_model(registry, info, weights)
    normalize = normalizer(info["stats"])

    def read(window):
        image, valid = stack.read(window)
        image = normalize(np.moveaxis(image, 0, -1))
        image[~valid] = 0.0
        return image, valid

    def run(consume, start=0):
        bar = Progress(len(windows) - start, label, enabled=progress)
        counts = {"tiles": 0, "skipped": 0}

        def write(tile):
            consume(tile)
            bar.update()
            counts["tiles"] += 1
            counts["skipped"] += tile.result is None

        run_pipeline(read, windows, start, lambda x: plugin.predict_tiles(model, x), write,
                     settings.batch_size, settings.queue_depth)
        n, skipped = counts["tiles"], counts["skipped"]
        click.echo(f"{label}: {n - skipped} tiles predicted, {skipped} all-nodata tiles "
                   f"skipped, {bar.elapsed:.1f} s ({n / max(bar.elapsed, 1e-9):.1f} tiles/s)")

    return run

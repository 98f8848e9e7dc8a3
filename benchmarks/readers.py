"""Reader-only throughput: 1024 px tiles/s the predict pipeline's readers deliver, no model.

    python benchmarks/readers.py [--size 6144] [--tilesize 1024] [--readers 1 2 4]

Reads every tile of a synthetic 3-band uint8 raster, as a deflate-compressed tiled GeoTIFF
and as a KEA file (deepseg-kea-io plugin), through the same path as ``deepseg predict``
(ImageStack read, normalization, nodata masking, batching, in-order delivery) with a model
that does nothing. Goal: reading scales with the reader count, so a GPU never waits on it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import synthetic_raster


def kea_copy(tif: Path, registry) -> Path:
    """The GeoTIFF written again as KEA, strip by strip."""
    from deepseg_core.contracts.raster import Window

    kea = tif.with_suffix(".kea")
    if kea.exists():
        return kea
    with registry.reader_for(tif).open(tif) as src:
        info = src.info
        with registry.writer_for(kea, None).create(kea, info) as sink:
            for r in range(0, info.height, 1024):
                w = Window(r, 0, min(1024, info.height - r), info.width)
                sink.write(src.read(w), w)
    return kea


def reader_tiles_per_s(path: Path, registry, tilesize: int, overlap: int, readers: int,
                       batch_size: int = 8) -> tuple[int, float]:
    """(tiles, seconds) of reading every tile of ``path`` with ``readers`` threads."""
    from deepseg_core.config.schema import ImageSource
    from deepseg_core.data.stack import ImageStack
    from deepseg_core.inference.pipeline import Flow, run_pipeline
    from deepseg_core.inference.readers import TileReader

    stack = ImageStack([ImageSource(path=str(path))], registry)
    windows = registry.get("tiler", "grid")(stack.grid.width, stack.grid.height, tilesize,
                                            overlap)
    stats = {"mean": [100.0] * stack.nbands, "std": [50.0] * stack.nbands}
    read, count = TileReader(stack, stats), [0]

    def consume(job):
        count[0] += 1

    start = time.perf_counter()
    try:
        run_pipeline(read, windows, lambda x: [None] * len(x), consume,
                     Flow(batch_size, 4, readers))
    finally:
        read.close()
        stack.close()
    return count[0], time.perf_counter() - start


def main() -> None:
    from deepseg_core.plugins import load_plugins

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=6144)
    parser.add_argument("--tilesize", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=256)
    parser.add_argument("--readers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deepseg-bench-readers"))
    args = parser.parse_args()
    registry = load_plugins().registry
    tif = synthetic_raster(args.workdir / f"synthetic_{args.size}.tif", args.size)
    files = {"GeoTIFF (deflate, 512 px blocks)": tif, "KEA": kea_copy(tif, registry)}
    for name, path in files.items():
        for readers in args.readers:
            runs = [reader_tiles_per_s(path, registry, args.tilesize, args.overlap, readers)
                    for _ in range(args.repeats)]
            rates = ", ".join(f"{n / s:.1f}" for n, s in runs)
            print(f"{name}: {readers} reader(s): {runs[0][0]} tiles of {args.tilesize} px, "
                  f"{rates} tiles/s", flush=True)


if __name__ == "__main__":
    main()

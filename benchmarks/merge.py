"""``deepseg merge``'s assembly against shard count, raster size and threads (issue 27, item 5).

    python benchmarks/merge.py [--sizes 8192 16384] [--shards 1 4 16] [--workers 1 2]
                               [--probabilities] [--workdir /tmp/deepseg-bench-merge]

For each size and shard count, the partials of a prediction are written as the predict stage
writes them (``Partial``: 224 px tile cores, row-major, a shard per band of tile rows; class
maps of patches with 2 % speckle, and with ``--probabilities`` 3 uint8 probability bands as
well), once, then kept. Each worker count then assembles them into a deflate GeoTIFF through
the built-in writer and reader, exactly as ``deepseg merge`` does (``assemble``: blocks read,
checked and decompressed, written, every block read back and compared), in a fresh process:
wall and CPU seconds, peak memory (VmHWM), and a digest of the pixels, which must be the same
for every worker count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from common import run_child

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CORE, KEY = 224, {"benchmark": "merge"}


def peak_mib() -> float:
    """This process's peak resident memory (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def shard_rows(size: int, n: int) -> list[tuple[int, int]]:
    """Raster rows of each of ``n`` shards: whole bands of tile rows, as the plan splits."""
    tile_rows = -(-size // CORE)
    cuts = [round(i * tile_rows / n) * CORE for i in range(n + 1)]
    return [(min(a, size), min(b, size)) for a, b in zip(cuts, cuts[1:])]


def make_partials(folder: Path, size: int, n: int, probabilities: bool) -> None:
    """The ``n`` complete partials of a ``size``² prediction (kept once made)."""
    from deepseg_core.contracts.raster import Window
    from deepseg_core.stages.predict.partials import Partial

    folder.mkdir(parents=True, exist_ok=True)
    for i, (r0, r1) in enumerate(shard_rows(size, n)):
        base = folder / f"out.tif.part-{i}-of-{n}"
        if base.with_name(base.name + ".commit.json").exists():
            continue
        partial = Partial(base, KEY)
        for r in range(r0, r1, CORE):
            for c in range(0, size, CORE):
                w = Window(r, c, min(CORE, r1 - r), min(CORE, size - c))
                rng = np.random.default_rng([r, c])  # the same pixels in any shard count
                rows = np.arange(r, r + w.height)[:, None] // 37
                cols = np.arange(c, c + w.width)[None, :] // 53
                classes = ((rows * 7 + cols * 3) % 5).astype(np.uint8)
                speckle = rng.random(classes.shape) < 0.02
                classes[speckle] = rng.integers(0, 5, int(speckle.sum()))
                partial.write("classes", classes[None], w)
                if probabilities:
                    probs = rng.integers(0, 256, (3, w.height, w.width), dtype=np.uint8)
                    partial.write("probabilities", probs, w)
        partial.commit(1, complete=True)
        partial.close()


def child(folder: str, size: int, n: int, workers: int, probabilities: bool) -> None:
    """Assemble the partials in this process; print the figures as JSON."""
    import rasterio

    from deepseg_core.builtin.rasterio_io import GdalReader, GTiffWriter
    from deepseg_core.contracts.raster import RasterInfo
    from deepseg_core.stages.predict.assemble import Part, assemble, publish

    root = Path(folder)
    parts = [Part(root / f"out.tif.part-{i}-of-{n}", KEY, f"{i}/{n}", rows)
             for i, rows in enumerate(shard_rows(size, n))]
    layers = [("classes", root / "out.tif", RasterInfo(size, size, 1, "uint8", nodata=255,
                                                      thematic=True))]
    if probabilities:
        layers.append(("probabilities", root / "out_probabilities.tif",
                       RasterInfo(size, size, 3, "uint8", nodata=0)))
    start, cpu = time.perf_counter(), time.process_time()
    written = [assemble(parts, layer, GTiffWriter(), lambda _: GdalReader(), out, info,
                        threads=workers) for layer, out, info in layers]
    finals = publish(written)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    digest = hashlib.sha256()
    for path in finals:
        with rasterio.open(path) as src:
            for _, window in src.block_windows(1):
                digest.update(src.read(window=window).tobytes())
        path.unlink()
        Path(f"{path}.aux.xml").unlink(missing_ok=True)
        path.with_suffix(".qml").unlink(missing_ok=True)
    print(json.dumps({"wall": wall, "cpu": cpu, "peak": peak_mib(),
                      "pixels": digest.hexdigest()[:12]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8192, 16384])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--probabilities", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deepseg-bench-merge"))
    parser.add_argument("--child", nargs=5)
    args = parser.parse_args()
    if args.child:
        folder, size, n, workers, probs = args.child
        child(folder, int(size), int(n), int(workers), probs == "1")
        return
    from deepseg_core.io.threads import available_cpus

    print(f"CPUs given: {available_cpus()}; load average {os.getloadavg()[0]:.1f}")
    print("| size | shards | workers | wall s | CPU s | peak MiB | pixels |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for n in args.shards:
            folder = args.workdir / f"{size}-{n}{'-p' if args.probabilities else ''}"
            make_partials(folder, size, n, args.probabilities)
            digests = set()
            for workers in args.workers:
                got = run_child(__file__, str(folder), str(size), str(n), str(workers),
                                "1" if args.probabilities else "0")
                digests.add(got["pixels"])
                print(f"| {size}² | {n} | {workers} | {got['wall']:.2f} | {got['cpu']:.2f} | "
                      f"{got['peak']:.0f} | {got['pixels']} |", flush=True)
            if len(digests) != 1:
                raise SystemExit(f"{size}² in {n} shards: the outputs differ between worker "
                                 "counts")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"children: {usage.ru_utime + usage.ru_stime:.1f} CPU s")


if __name__ == "__main__":
    main()

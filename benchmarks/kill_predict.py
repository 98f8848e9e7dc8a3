"""Kill prediction at random, for longer than the test suite does: `kills: N, resumed equal: N`.

    python benchmarks/kill_predict.py [--rounds 20] [--kills 5] [--seed 0] [--size 400]

Each round picks a mode (tile cores, blending, instances, an instance shard, a sharded merge)
and a scene at random, predicts it once uninterrupted, then SIGKILLs the CLI (a subprocess)
``--kills`` times at random moments of its work, lets a rerun finish and compares the outputs
with the uninterrupted run's (rasters byte for byte, GeoPackages feature by feature).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from faults import kill_at_random, run  # noqa: E402
from test_predict_kill import MODES, outputs, scene, timed_reference  # noqa: E402

from deepseg_core import predict  # noqa: E402


def one_round(folder: Path, registry, mode: str, kills: int, rng) -> tuple[int, bool]:
    settings, extra = MODES[mode]
    exp, path = scene(folder, registry, settings)
    out = predict.output_path(exp)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["predict", str(path), *extra]
    span = timed_reference(args, out)
    if extra:
        run("predict", str(path), "--shard", "1/2")
        kept = folder / "other-shard"
        kept.mkdir()
        for p in out.parent.glob("*part-0001*"):
            shutil.copy(p, kept / p.name)
        run("merge", str(path))
    reference = outputs(out)
    shutil.rmtree(out.parent)
    out.parent.mkdir()

    def finished():
        if extra:
            return any(p.name.endswith("part-0000-of-0002.gpkg") for p in out.parent.iterdir())
        return outputs(out) == reference

    def restart():
        shutil.rmtree(out.parent)
        out.parent.mkdir()

    counts = kill_at_random(args, out.parent, span, rng, kills, finished, restart)
    run(*args)
    if extra:
        for p in kept.iterdir():
            shutil.copy(p, out.parent / p.name)
        run("merge", str(path))
    return counts["kills"], outputs(out) == reference


def main() -> None:
    import tinymodels

    from deepseg_core.plugins.manager import load_plugins

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    registry = load_plugins(extra=[("tinymodels", tinymodels)]).registry
    rng = random.Random(args.seed)
    total = equal = 0
    for k in range(args.rounds):
        mode = rng.choice(list(MODES))
        with tempfile.TemporaryDirectory() as tmp:
            kills, same = one_round(Path(tmp), registry, mode, rng.randint(1, args.kills), rng)
        total += kills
        equal += kills if same else 0
        print(f"round {k}: {mode}: {kills} kills, resumed {'equal' if same else 'DIFFERENT'}",
              flush=True)
    print(f"kills: {total}, resumed equal: {equal}")


if __name__ == "__main__":
    main()

"""Kill prediction at random, for longer than the test suite does: `kills: N, resumed equal: N`.

    python benchmarks/kill_predict.py [--rounds 20] [--kills 5] [--seed 0] [--size 400]

Each round picks a mode (tile cores, blending, instances, an instance shard)
and a scene at random, predicts it once uninterrupted, then SIGKILLs the CLI (a subprocess)
``--kills`` times at random moments of its work, lets a rerun finish and compares the outputs
with the uninterrupted run's (rasters byte for byte, GeoPackages feature by feature).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_predict_kill import MODES, killed_and_resumed  # noqa: E402


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
            counts, same = killed_and_resumed(Path(tmp), registry, mode,
                                              rng.randint(1, args.kills), rng)
        kills = counts["kills"]
        total += kills
        equal += kills if same else 0
        print(f"round {k}: {mode}: {kills} kills, resumed {'equal' if same else 'DIFFERENT'}",
              flush=True)
    print(f"kills: {total}, resumed equal: {equal}")


if __name__ == "__main__":
    main()

"""SIGKILL campaigns, longer than the test suite's: `kills: N, resumed equal: N` per mode.

    python benchmarks/kill_campaign.py [--modes cores,blend,...] [--rounds 10] [--kills 3]
                                       [--seed 0] [--moments 0.5]

Modes: the prediction modes cores, blend, instance and instance-shard, merge (of three
shards), train and dataprep (tests/support/scenarios.py: the scenes, the uninterrupted runs
and how outputs are compared). Each round of a mode draws 1 to ``--kills`` kill points: a
random moment of the run's work (with probability ``--moments``, sent from outside) or a
random I/O boundary of the uninterrupted run's (fsync/replace, counted by the child itself,
tests/support/child.py). The CLI runs in subprocesses and is SIGKILLed at each point in turn,
each run resuming what the last one left; then a run finishes and its outputs are compared
with the uninterrupted run's (rasters and stores value for value, GeoPackages feature by
feature, checkpoints weight for weight). A point the run does not reach (it finished first)
is no kill, and not counted. The suite keeps a few chosen kills per mode
(tests/stages/test_*_kill.py).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the train mode compares weights in here

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's kit: tests.support

MODES = ["cores", "blend", "instance", "instance-shard", "merge", "train", "dataprep"]


def draw_points(rng: random.Random, boundaries: int, seconds: float, kills: int,
                moments: float) -> list:
    """1 to ``kills`` kill points: random moments in ``[0, seconds)`` of the work (with
    probability ``moments``), else random I/O boundaries ``1..boundaries``."""
    from tests.support.kills import At, Moment

    points = []
    for _ in range(rng.randint(1, kills)):
        if boundaries == 0 or rng.random() < moments:
            points.append(Moment(round(rng.uniform(0, seconds), 3)))
        else:
            points.append(At(rng.randint(1, boundaries), after=rng.random() < 0.5))
    return points


def scenario(mode: str, folder: Path, registry):
    from tests.support import scenarios

    if mode in scenarios.PREDICT_MODES:
        return scenarios.Predict(folder / mode, registry, mode)
    if mode == "merge":
        return scenarios.Merge(folder / "merge", scenarios.Predict(folder / "cores", registry,
                                                                   "cores"))
    return {"train": scenarios.Train, "dataprep": scenarios.Dataprep}[mode](folder / mode)


def campaign(mode: str, rounds: int, kills: int, moments: float, rng, registry) -> dict:
    """Kill ``mode`` for ``rounds`` rounds; returns the counts."""
    from tests.support.kills import kill_then_finish

    counts = {"kills": 0, "resumed equal": 0, "runs": 0}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / mode).mkdir()
        run = scenario(mode, Path(tmp), registry)
        for k in range(rounds):
            points = draw_points(rng, len(run.boundaries), run.seconds, kills, moments)
            run.restart()
            outcome = kill_then_finish(run.args, points, test_models=run.test_models,
                                       began=run.began, prepare=run.prepare)
            equal = run.equal()
            counts["kills"] += outcome.kills
            counts["resumed equal"] += outcome.kills if equal else 0
            counts["runs"] += outcome.runs
            print(f"  {mode} round {k}: points {points}: {outcome.kills} kills, resumed "
                  f"{'equal' if equal else 'DIFFERENT'}", flush=True)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--kills", type=int, default=3, help="most kills in a round")
    parser.add_argument("--moments", type=float, default=0.5,
                        help="the share of kills at random moments (else at I/O boundaries)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; expected some of {MODES}")

    from deepseg_core.plugins import load_plugins
    from tests.support import models

    registry = load_plugins(extra=[("testmodels", models)]).registry
    rng = random.Random(args.seed)
    results = {}
    for mode in modes:
        results[mode] = counts = campaign(mode, args.rounds, args.kills, args.moments, rng,
                                          registry)
        print(f"{mode}: kills: {counts['kills']}, resumed equal: {counts['resumed equal']} "
              f"({counts['runs']} runs)", flush=True)
    total = {k: sum(c[k] for c in results.values()) for k in ("kills", "resumed equal")}
    print(f"all: kills: {total['kills']}, resumed equal: {total['resumed equal']}")
    sys.exit(0 if total["kills"] == total["resumed equal"] else 1)


if __name__ == "__main__":
    main()

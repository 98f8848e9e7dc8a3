"""Prediction survives SIGKILL: every rerun resumes, and the outputs equal an uninterrupted run's
bit for bit.

Each mode runs the real CLI in subprocesses (tests.support.cli) and SIGKILLs it at chosen I/O
boundaries, counted by the child itself (tests.support.child): in the middle of the tiles
twice in a row (the second kill hits the run resuming from the first), just before the
outputs are published, and just after they are, before the shards are deleted. A final rerun
must finish and its outputs equal the uninterrupted run's. Every commit of a run goes through
those boundaries, so kills there leave the files in the states a kill at any instant leaves
them in (what was appended after the last commit is dropped by the rerun, whole or torn);
``benchmarks/kill_campaign.py`` kills at random boundaries and random moments, for longer.

The model is a NumPy test model (tests.support.models): the children start without
TensorFlow, and the fault is in the files, not in the model. Commits are made as often as the
writers can (``commit_seconds: 0``), so the kills find committed tiles to resume from. The
scenes and runs are tests.support.scenarios'.
"""

from __future__ import annotations

import pytest

from tests.support.kills import At, kill_then_finish
from tests.support.scenarios import PREDICT_MODES, Merge, Predict

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory, registry):
    """One scene and uninterrupted run per mode, made when a test first needs it."""
    made = {}

    def get(mode):
        if mode not in made:
            made[mode] = Predict(tmp_path_factory.mktemp(mode), registry, mode)
        return made[mode]

    return get


def points(run: Predict) -> list[list]:
    """The kill rounds of a mode (see the module's docstring)."""
    n = len(run.boundaries)
    rounds = [[At(n // 3), At(n // 3)]]
    if not run.extra:  # a shard's outputs are published by the merge
        name = run.out.name
        rounds += [[At(1, "replace", name)],
                   [At(1, "replace", f".{name}.published.json", after=True)]]
    return rounds


def differences(found: dict, expected: dict) -> dict:
    return {k: (found.get(k), expected.get(k)) for k in set(found) | set(expected)
            if found.get(k) != expected.get(k)}


@pytest.mark.parametrize("mode", list(PREDICT_MODES))
def test_killed_prediction_resumes_to_the_same_outputs(scenarios, mode):
    run = scenarios(mode)
    rounds = points(run)
    for kills in rounds:
        run.restart()
        outcome = kill_then_finish(run.args, kills, test_models=True, probe=run.probe)
        assert outcome.kills == len(kills), (kills, outcome)
        found = run.finished()
        assert found == run.reference, differences(found, run.reference)
        print(f"{mode}: killed at {kills}: tiles committed at the kills "
              f"{' '.join(outcome.states)}, resumed equal")
    assert sum(map(len, rounds)) == (2 if run.extra else 4)


def test_killed_merge_resumes_to_the_same_outputs(scenarios, tmp_path):
    """Three shards, then ``deepseg merge`` killed at its boundaries: as the single run."""
    merge = Merge(tmp_path, scenarios("cores"))
    n, name = len(merge.boundaries), merge.out.name
    for kills in ([At(n // 2), At(n // 2)], [At(1, "replace", name)],
                  [At(1, "replace", f".{name}.published.json", after=True)], [At(n)]):
        merge.restart()
        outcome = kill_then_finish(merge.args, kills, test_models=True)
        assert outcome.kills == len(kills), (kills, outcome)
        assert merge.finished() == merge.reference, kills
        print(f"merge: killed at {kills}, resumed equal")

"""`deepseg dataprep` SIGKILLed while it builds a store, and while it checks a complete one; a
rerun's store equals an uninterrupted run's (every dataset and attribute), and a killed run
never leaves a store that passes for complete.

The build is killed from inside the child (tests.support.child) at chosen points: halfway
through writing the tiles into the temporary HDF5 file, with the file complete and fsync'ed but
not renamed, and just after the rename (the one commit of a store). The check of a complete
store (a reuse: nothing is written) is killed at a seeded random moment from outside. Longer
random campaigns: ``benchmarks/kill_campaign.py``.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.support import cli
from tests.support.kills import At, Moment, kill_then_finish
from tests.support.scenarios import Dataprep, assert_same_store, store_content

pytestmark = pytest.mark.faults

POINTS = {  # where a build is killed: the point (given the tile count), the store published
    "writing": (lambda tiles: At(tiles * 3 // 2, "h5write"), False),  # halfway: 3 writes a tile
    "before-rename": (lambda _: At(1, "replace", "store.h5"), False),  # whole, fsync'ed
    "after-rename": (lambda _: At(1, "replace", "store.h5", after=True), True),  # committed
}


@pytest.fixture(scope="module")
def dataprep(tmp_path_factory):
    """The scene, its experiment and an uninterrupted run's store (tests.support.scenarios)."""
    return Dataprep(tmp_path_factory.mktemp("dataprep-kill"))


@pytest.mark.parametrize("where", list(POINTS))
def test_a_killed_build_then_a_rerun_equals_an_uninterrupted_run(dataprep, where):
    point, published = POINTS[where][0](dataprep.tiles), POINTS[where][1]
    dataprep.restart()
    outcome = kill_then_finish(dataprep.args, [point], probe=dataprep.probe)
    assert outcome.kills == 1 and outcome.states == [published]
    assert ("reusing store" in outcome.output) == published, outcome.output[-2000:]
    assert_same_store(dataprep.finished(), dataprep.reference)


def test_a_kill_while_a_complete_store_is_checked_leaves_it_whole(dataprep):
    began = time.monotonic()
    cli.deepseg(*dataprep.args)  # a reuse: how long it runs, from the start
    span = time.monotonic() - began
    rng = random.Random(13)
    for _ in range(8):  # a run that ends before its kill is no kill: try earlier
        moment = Moment(rng.uniform(0.4, 0.9) * span)  # the first part is Python starting
        outcome = kill_then_finish(dataprep.args, [moment], probe=dataprep.probe)
        if outcome.kills:
            break
        span *= 0.7
    assert outcome.kills == 1 and outcome.states == [True], outcome
    assert "reusing store" in outcome.output
    assert_same_store(store_content(dataprep.store), dataprep.reference)

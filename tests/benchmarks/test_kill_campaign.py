"""benchmarks/kill_campaign.py: its draw of kill points, and one round run end to end (the
campaign itself is what the benchmark runs; the suite's kills are tests/stages/test_*_kill.py)."""

import random
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support.benchmarks import load, present
from tests.support.kills import At, Moment

pytestmark = present("kill_campaign")


@pytest.fixture(scope="module")
def campaign():
    return load("kill_campaign")


def test_points_are_boundaries_of_the_run_or_moments_of_its_work(campaign):
    draws = [campaign.draw_points(random.Random(seed), 40, 2.5, 3, 0.5) for seed in range(200)]
    assert {len(points) for points in draws} == {1, 2, 3}
    points = [p for draw in draws for p in draw]
    boundaries = [p for p in points if isinstance(p, At)]
    moments = [p for p in points if isinstance(p, Moment)]
    assert len(boundaries) + len(moments) == len(points)
    assert 0.4 < len(moments) / len(points) < 0.6
    assert {p.n for p in boundaries} <= set(range(1, 41)) and {1, 40} <= {p.n for p in boundaries}
    assert {p.after for p in boundaries} == {False, True}
    assert all(0 <= p.seconds < 2.5 for p in moments)
    assert campaign.draw_points(random.Random(7), 40, 2.5, 3, 0.5) == draws[7]  # seeded


def test_only_moments_where_there_are_no_boundaries_and_none_when_asked(campaign):
    rng = random.Random(1)
    assert all(isinstance(p, Moment) for _ in range(20)
               for p in campaign.draw_points(rng, 0, 1.0, 3, 0.0))
    assert all(isinstance(p, At) for _ in range(20)
               for p in campaign.draw_points(rng, 5, 1.0, 3, 0.0))


@pytest.mark.faults
def test_a_round_of_dataprep_kills_resumes_equal():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kill_campaign.py"),
                           "--modes", "dataprep", "--rounds", "1", "--kills", "1",
                           "--moments", "0"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "all: kills: 1, resumed equal: 1", done.stdout

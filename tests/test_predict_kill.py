"""Prediction survives SIGKILL at random moments: every rerun resumes, outputs equal bit for bit.

Each mode runs the real CLI in subprocesses (``tests/deepseg_test_cli.py``) and kills it with
SIGKILL at seeded random moments after its work began, at least ten times, then lets a rerun
finish and compares the outputs with an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time

import geopandas as gpd
import pytest
import tinymodels
from faults import kill_at_random, run, start
from scenes import squares_scene
from test_predict import experiment, fake_training

from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import predict

KILLS = 10
SEMANTIC = dict(tilesize=32, overlap=8)
INSTANCE = dict(model="tinyblobs", segmentation_type="instance", tilesize=64, overlap=32,
                classes=[{"name": "background"}, {"name": "blob"}])
MODES = {  # name: experiment settings, predict arguments of the killed runs
    "cores": (dict(SEMANTIC, predict={"probabilities": "uint8", "commit_seconds": 0}), []),
    "blend": (dict(SEMANTIC, predict={"blend": True, "probabilities": "float32"}), []),
    "instance": (dict(INSTANCE, predict={"output": "predictions/blobs.tif"}), []),
    "instance-shard": (dict(INSTANCE, predict={"output": "predictions/blobs.tif"}),
                       ["--shard", "0/2"]),
}




def committed(out) -> str:
    """Tiles in the commit records (semantic) or progress records (instances) beside ``out``."""
    records = [json.loads(p.read_text()) for p in out.parent.glob("*.json")]
    found = [r["tiles"] for r in records if "tiles" in r]
    return ",".join(map(str, found)) or "none"


@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra=[("tinymodels", tinymodels)]).registry


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outputs(out) -> dict:
    """What a finished prediction left: raster bytes; GeoPackage features (not bytes: SQLite
    pages carry timestamps)."""
    found = {}
    for path in sorted(out.parent.iterdir()):
        if path.name.endswith(".published.json"):  # bookkeeping: its shard count differs
            found[path.name] = "record"
        elif path.suffix == ".gpkg":
            frame = gpd.read_file(path)
            found[path.name] = sorted(zip(frame.geometry.to_wkb(), frame["score"] if "score"
                                          in frame else frame["class_id"]))
        else:
            found[path.name] = digest(path)
    return found


def scene(tmp_path, registry, settings):
    img, _, _ = squares_scene(tmp_path, size=300, nsquares=40, seed=7)
    exp = experiment(tmp_path, img, **settings)
    fake_training(exp, registry, img)
    return exp, exp.source


def timed_reference(args, out):
    """An uninterrupted run: its outputs, and how long it worked after its first work file."""
    proc = start(*args)
    while not any(".part-" in p.name for p in out.parent.glob("*")) and proc.poll() is None:
        time.sleep(0.005)
    began = time.monotonic()
    text, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, text
    return time.monotonic() - began


def killed_and_resumed(folder, registry, mode: str, kills: int, rng) -> tuple[dict, bool]:
    """Predict ``mode`` once uninterrupted, then SIGKILL it ``kills`` times at random moments
    of its work (``rng``), finish it and compare: (the kill counts, whether the outputs equal
    the uninterrupted run's). Runs that finish before their kill are compared too."""
    settings, extra = MODES[mode]
    exp, path = scene(folder, registry, settings)
    out = predict.output_path(exp)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["predict", str(path), *extra]
    span = timed_reference(args, out)
    if extra:  # a shard: the rest of the grid and the merge make the outputs
        assert run("predict", str(path), "--shard", "1/2").returncode == 0
        kept = folder / "other-shard"
        kept.mkdir()
        for p in out.parent.glob("*part-0001*"):
            shutil.copy(p, kept / p.name)
        assert run("merge", str(path)).returncode == 0
    reference = outputs(out)
    assert reference and not any(".part-" in name for name in reference)

    def finished():
        if extra:
            return any(p.name.endswith("part-0000-of-0002.gpkg") for p in out.parent.iterdir())
        found = outputs(out)
        assert found == reference, {k: (found.get(k), reference.get(k))
                                    for k in set(found) | set(reference)
                                    if found.get(k) != reference.get(k)}
        return True

    def restart():
        shutil.rmtree(out.parent)
        out.parent.mkdir()

    restart()
    counts = kill_at_random(args, out.parent, span, rng, kills, finished, restart,
                            probe=lambda: committed(out))
    assert run(*args).returncode == 0
    if extra:
        for p in kept.iterdir():
            shutil.copy(p, out.parent / p.name)
        assert run("merge", str(path)).returncode == 0
    return counts, outputs(out) == reference


@pytest.mark.parametrize("mode", list(MODES))
def test_killed_prediction_resumes_to_the_same_outputs(tmp_path, registry, mode):
    counts, equal = killed_and_resumed(tmp_path, registry, mode, KILLS,
                                       random.Random(f"predict-{mode}"))
    assert equal and counts["kills"] >= KILLS
    print(f"{mode}: kills: {counts['kills']}, runs: {counts['runs']}, resumed equal; "
          f"tiles committed at the kills: {' '.join(counts['states'])}")


def test_killed_merge_resumes_to_the_same_outputs(tmp_path, registry):
    exp, path = scene(tmp_path, registry, dict(SEMANTIC, predict={"probabilities": "uint8"}))
    out = predict.output_path(exp)
    assert run("predict", str(path)).returncode == 0
    reference = outputs(out)
    shutil.rmtree(out.parent)
    for i in range(3):
        assert run("predict", str(path), "--shard", f"{i}/3").returncode == 0
    shards = tmp_path / "shards"
    shutil.copytree(out.parent, shards)

    def restart():
        shutil.rmtree(out.parent)
        shutil.copytree(shards, out.parent)

    args = ["merge", str(path)]
    span = timed_merge(args, out, restart)
    counts = kill_at_random(args, out.parent, span, random.Random("merge"), KILLS,
                            lambda: outputs(out) == reference, restart)
    done = run(*args)
    assert done.returncode == 0, done.stdout
    assert outputs(out) == reference and counts["kills"] >= KILLS
    print(f"merge: kills: {counts['kills']}, runs: {counts['runs']}, resumed equal")


def timed_merge(args, out, restart) -> float:
    """How long a merge takes, from its start (its work begins at once)."""
    began = time.monotonic()
    assert run(*args).returncode == 0
    restart()
    return time.monotonic() - began

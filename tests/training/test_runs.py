"""A fresh training run never mixes with an old one; resume continues only the same run.

``deepseg train`` runs in subprocesses. The kills are real SIGKILLs at I/O boundaries, counted
by the child itself (tests.support.child): right after the rename that commits model.json,
after the k-th folder moved aside, after the k-th file of a never-committed run deleted.
What is checked: what is on disk after each kill, what the next run with ``training.resume``
false, true and auto does, and that predict never pairs a model.json with weights of another
run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support import cli
from tests.support.kills import At
from tests.support.synthetic import squares_scene, write_experiment

pytestmark = pytest.mark.xdist_group("train_runs")

#: the kill points: model.json committed; the k-th rename of a move aside or deletion
MODEL_JSON = At(1, "replace", "model/model.json", after=True)
SET_ASIDE = "deepseg_core.training.aside:set_aside"  # a fresh run's first step, alone


def moved(k: int) -> At:
    return At(k, "rename", after=True)


def deleted(k: int) -> At:
    return At(k, "unlink", after=True)


def deepseg(*args: object, kill: At | None = None, call: str | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """``deepseg ARGS`` in a subprocess, SIGKILLed at ``kill``; with ``call``, that function
    of the core on ARGS instead of the CLI (tests.support.child). Output merged."""
    return cli.deepseg(*args, kill=kill.spec() if kill else None, call=call, merged=True,
                       timeout=timeout)


def last_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode > 0 and "Traceback" not in proc.stdout, proc.stdout[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def hashes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path -> SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def record(outdir: Path) -> dict:
    return json.loads((outdir / "model" / "state.json").read_text())


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    img, gpkg, _ = squares_scene(folder, size=160, nsquares=20)
    base = dict(epochs=2, model={"name": "unet64", "filters": 2, "depth": 1},
                training={"batch_size": 4, "seed": 3})

    def experiment(name: str, **changes) -> Path:
        settings = {**base, **changes}
        settings["training"] = {**base["training"], **changes.get("training", {})}
        return write_experiment(folder, img, gpkg, name=name, **settings)

    from deepseg_core.config import load_experiment
    from deepseg_core.plugins import load_plugins
    from deepseg_core.stages import dataprep

    dataprep.run(load_experiment(experiment("base")), load_plugins().registry)
    proc = deepseg("train", experiment("base"))
    assert proc.returncode == 0, proc.stdout[-3000:]
    return folder / "runs", experiment


def copy_of_base(runs: Path, name: str) -> Path:
    shutil.copytree(runs / "base", runs / name, ignore=shutil.ignore_patterns("*.lock"))
    return runs / name


def key(path: Path) -> str:
    from deepseg_core.config import load_experiment
    from deepseg_core.data.folds import split
    from deepseg_core.stages.train import validation_folds
    from deepseg_core.store.identity import open_store
    from deepseg_core.training.reuse import run_key

    exp = load_experiment(path)
    with open_store(exp) as store:
        tiles = store.tiles
        train_idx, _ = split(tiles["fold"], tiles["row"], tiles["col"], exp.tilesize,
                             validation_folds(exp))
    return run_key(exp, train_idx)


@pytest.mark.faults
def test_a_fresh_run_killed_after_model_json_never_pairs_it_with_the_old_weights(scene):
    runs, experiment = scene
    outdir = copy_of_base(runs, "fresh")
    old = hashes(outdir / "model")
    path = experiment("fresh", learning_rate=0.02)  # another run: another key
    proc = deepseg("train", path, kill=MODEL_JSON)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:]
    assert "moved to" in proc.stdout and str(outdir / "previous") in proc.stdout
    assert [p.name for p in (outdir / "model").iterdir()] == ["model.json"]
    assert json.loads((outdir / "model" / "model.json").read_text())["run"] == key(path)
    assert hashes(outdir / "previous" / "model") == old  # the old run, whole, aside

    predicted = deepseg("predict", path)  # model.json of the new run, no weights of it
    assert f"no trained model in {outdir / 'model'}" in last_line(predicted)

    for resume in (True, "auto"):
        path = experiment("fresh", learning_rate=0.02, training={"resume": resume})
        proc = deepseg("train", path)
        if resume is True:  # nothing committed to continue: one line, nothing written
            assert last_line(proc) == (
                f"error: {path}: training.resume: true, but there is no checkpoint to resume "
                f"from in {outdir / 'model'} (the last run with one is in "
                f"{outdir / 'previous'}); set training.resume: auto (or false) to train afresh")
            assert [p.name for p in (outdir / "model").iterdir()] == ["model.json"]
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f"deleted model/ in {outdir}: a run that ended before its first " \
           "checkpoint" in proc.stdout
    assert hashes(outdir / "previous" / "model") == old  # the killed run did not replace it
    new = record(outdir)
    assert new["run"] == key(path) == json.loads(
        (outdir / "model" / "model.json").read_text())["run"]
    from deepseg_core.models.folder import trained_model

    trained = trained_model(outdir, 3, ["background", "square"])
    assert hashlib.sha256(trained.weights.read_bytes()).hexdigest() in new["files"].values()
    assert not [p for p in outdir.iterdir() if p.name.startswith(".previous")]


@pytest.mark.faults
@pytest.mark.parametrize("kills_at", [1, 2, 3, 4])
@pytest.mark.parametrize("committed", [True, False])
def test_a_kill_while_a_run_is_moved_aside_is_finished_by_the_next_run(tmp_path, kills_at,
                                                                       committed):
    """The old run (model/ with a checkpoint, logs/) replaces the one in previous/; a run
    killed before its first checkpoint has its files deleted in place instead (a user's own
    file stays). Killed after each rename of the move (each deletion), the next run's first
    step finishes it: nothing lost, nothing mixed."""
    outdir = tmp_path / "run"
    files = {"previous/model/state.json": "Z", "previous/logs/training.csv": "Z",
             "model/model.json": "A", "logs/training.csv": "A",
             "logs/tensorboard/train/events.out.tfevents.1": "A", "model/notes.txt": "U"}
    if committed:
        files.update({"model/state.json": "A", "model/best.keras": "A"})
    for name, text in files.items():
        (outdir / name).parent.mkdir(parents=True, exist_ok=True)
        (outdir / name).write_text(f"{text} {name}")
    step = moved if committed else deleted
    proc = deepseg(outdir, call=SET_ASIDE, kill=step(kills_at))
    steps = 4 if committed else 3
    assert proc.returncode == (-signal.SIGKILL if kills_at <= steps else 0), proc.stdout
    from deepseg_core.training.aside import finish_move, set_aside
    from deepseg_core.training.runs import committed_record

    assert committed_record(outdir) is None  # a run on its way out is no run to continue
    finish_move(outdir)
    if committed:
        want = {f"previous/{k}": f"{v} {k}" for k, v in files.items() if v in "AU"}
    else:
        set_aside(outdir)  # the next fresh run: it deletes what the killed one left
        want = {k: f"{v} {k}" for k, v in files.items() if v in "ZU"}
    assert {str(p.relative_to(outdir)): p.read_text() for p in sorted(outdir.rglob("*"))
            if p.is_file()} == want


@pytest.mark.faults
def test_a_training_killed_while_moving_the_old_run_aside_is_finished_by_resume(scene):
    runs, experiment = scene
    outdir = copy_of_base(runs, "moving")
    old = hashes(outdir / "model")
    (outdir / "previous" / "model").mkdir(parents=True)
    (outdir / "previous" / "model" / "state.json").write_text("{}")  # an older run
    proc = deepseg("train", experiment("moving", epochs=3), kill=moved(2))
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:]
    assert (outdir / ".previous.new" / "model").exists() and (outdir / "previous").exists()
    # the same settings as the old run, but the killed run was a fresh one: it is finished
    path = experiment("moving", training={"resume": True})
    assert "no checkpoint to resume from" in last_line(deepseg("train", path))
    assert hashes(outdir / "previous" / "model") == old
    assert not [p for p in outdir.iterdir() if p.name.startswith(".previous")]


def test_resume_true_names_the_settings_that_differ_and_changes_nothing(scene):
    runs, experiment = scene
    outdir = copy_of_base(runs, "changed")
    before = hashes(outdir)
    path = experiment("changed", learning_rate=0.02, model={"name": "unet64", "filters": 3,
                                                            "depth": 1},
                      training={"resume": True, "batch_size": 2})
    line = last_line(deepseg("train", path))
    state = outdir / "model" / "state.json"
    assert line == (f"error: {state}: training.resume: true, but the committed run is not "
                    "this one: learning_rate 0.01 -> 0.02, model.filters 2 -> 3, "
                    "training.batch_size 4 -> 2; set them back to continue it, or set "
                    "training.resume: auto (or false) to train afresh (which moves it to "
                    f"{outdir / 'previous'})")
    assert hashes(outdir) == before


def weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


def test_raising_epochs_continues_the_run_to_equal_a_longer_uninterrupted_one(scene):
    runs, experiment = scene
    outdir = copy_of_base(runs, "longer")
    first = record(outdir)["run"]
    whole = experiment("whole", epochs=3)
    assert deepseg("train", whole).returncode == 0
    path = experiment("longer", epochs=3, training={"resume": True})
    proc = deepseg("train", path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert all(np.array_equal(a, b) for a, b in zip(weights(outdir / "model" / "last.keras"),
                                                    weights(runs / "whole/model/last.keras")))
    for name in ("logs/training.csv", "model/model.json"):
        assert (outdir / name).read_bytes() == (runs / "whole" / name).read_bytes(), name
    now = record(outdir)
    assert now["run"] == key(path) == record(runs / "whole")["run"]
    assert now["earlier"] == [first] and not (outdir / "previous").exists()

    done = deepseg("train", experiment("longer", epochs=3, training={"resume": "auto"}))
    assert done.returncode == 0 and "has finished (3 epochs); nothing to train" in done.stdout
    assert record(outdir) == now


def test_a_second_training_of_the_experiment_stops_at_once_naming_the_first(scene):
    runs, experiment = scene
    outdir = runs / "busy"
    path = experiment("busy", epochs=8)
    first = cli.start("train", path)
    try:
        deadline = time.monotonic() + 300
        while not (outdir / "model" / "model.json").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        other = path.with_name("busy-again.yaml")  # the same experiment, other settings
        settings = yaml.safe_load(path.read_text())
        settings["training"]["resume"] = "auto"
        other.write_text(yaml.safe_dump({**settings, "learning_rate": 0.05}, sort_keys=False))
        start = time.monotonic()
        line = last_line(deepseg("train", other))
        assert time.monotonic() - start < 60
        assert line.startswith(f"error: {outdir / 'model.lock'}: the training run is being "
                               "written by host ") and f" pid {first.pid} " in line, line
        out, _ = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, out[-3000:]
    assert yaml.safe_load((outdir / "experiment.yaml").read_text())["learning_rate"] == 0.01
    info = json.loads((outdir / "model" / "model.json").read_text())
    assert info["run"] == record(outdir)["run"] == key(path)
    assert record(outdir)["epoch"] == 8 and not (outdir / "previous").exists()
    assert not (outdir / "model.lock").exists()


def test_what_resume_tolerates_and_what_it_names():
    from deepseg_core.training.reuse import key_of
    from deepseg_core.training.runs import differences

    settings = {"store": "s", "tiles": "t", "epochs": 10, "learning_rate": 0.01,
                "model": {"name": "unet64", "params": {"filters": 8}},
                "training": {"lr_schedule": "constant", "workers": 0, "seed": 1}}

    def committed(epoch=10, **changes):
        old = json.loads(json.dumps(settings))
        for name, value in changes.items():
            part, _, leaf = name.rpartition(".")
            (old[part] if part else old)[leaf] = value
        return {"epoch": epoch, "run": key_of(old), "settings": old}

    def now(**changes):
        return committed(**changes)["settings"]

    assert differences(committed(), settings) == ""
    assert differences(committed(epochs=5, epoch=5), settings) == ""  # more epochs
    assert differences(committed(epochs=20, epoch=8), settings) == ""  # fewer, not yet done
    assert differences(committed(epochs=20, epoch=12), settings) == (
        "epochs 10, but the run has trained 12")
    cosine = {"training.lr_schedule": "cosine"}
    assert differences(committed(epochs=5, epoch=5, **cosine), now(**cosine)) == (
        "epochs 5 -> 10 (lr_schedule: cosine spreads the rate over all epochs)")
    assert differences(committed(**{"training.workers": 4}), settings) == ""
    assert differences(committed(store="other"), settings) == (
        "the store (data settings or input files)")
    assert differences(committed(**{"model.params": {"filters": 4}, "tiles": "u"}),
                       settings) == "model.filters 4 -> 8, the training tiles (folds)"
    legacy = {"epoch": 3, "files": {}}
    assert differences(legacy, settings) == (
        "the record predates run keys, so it cannot be matched to these settings")


def test_predict_takes_only_weights_the_record_committed_for_model_json_s_run(scene,
                                                                             tmp_path):
    from deepseg_core.errors import DeepSegError
    from deepseg_core.models.folder import log, trained_model

    warned: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda entry: warned.append(entry.getMessage())  # type: ignore[method-assign]
    log.addHandler(handler)  # the CLI's show() may have stopped propagation in this process

    runs, _ = scene
    outdir = tmp_path / "run"
    shutil.copytree(runs / "base" / "model", outdir / "model")
    model, classes = outdir / "model", ["background", "square"]
    state, info = record(outdir), json.loads((model / "model.json").read_text())
    assert trained_model(outdir, 3, classes).weights == model / "best.keras"

    (model / "model.json").write_text(json.dumps({**info, "run": "f" * 64}))
    with pytest.raises(DeepSegError, match=r"model.json: written by another training run "
                       r"\(ffffffffffff\) than the checkpoints in .*state.json \(.{12}\), so "
                       r"its normalization statistics are not the weights'; rerun 'deepseg "
                       r"train' with training.resume: auto$"):
        trained_model(outdir, 3, classes)
    # an earlier key of the same run (a resume that raised epochs, killed before model.json)
    (model / "state.json").write_text(json.dumps({**state, "earlier": ["f" * 64]}))
    assert trained_model(outdir, 3, classes).weights == model / "best.keras"

    (model / "state.json").write_text(json.dumps(state))
    (model / "model.json").write_text(json.dumps(info))
    (model / "best.keras").write_bytes((model / "last.keras").read_bytes() + b"\0")
    assert trained_model(outdir, 3, classes).weights == model / "last.keras"
    log.removeHandler(handler)
    assert "best.keras: does not match the checkpoint record" in " ".join(warned)
    (model / "last.keras").rename(model / "last.pending.keras")  # committed, not yet renamed
    assert trained_model(outdir, 3, classes).weights == model / "last.pending.keras"
    (model / "last.pending.keras").write_bytes(b"PK")
    with pytest.raises(DeepSegError, match="does not match the checkpoint record"):
        trained_model(outdir, 3, classes)

    shutil.rmtree(model)  # a model trained before records had run keys: still predicts
    shutil.copytree(runs / "base" / "model", model)
    legacy = {k: v for k, v in state.items() if k not in ("run", "settings")}
    (model / "state.json").write_text(json.dumps(legacy))
    (model / "model.json").write_text(json.dumps({**info, "run": "f" * 64}))
    assert trained_model(outdir, 3, classes).weights == model / "best.keras"
    (model / "state.json").unlink()  # a crossval fold that took the train stage's run
    assert trained_model(outdir, 3, classes).weights == model / "best.keras"


@pytest.mark.parametrize("value, meant", [(False, False), (True, True), ("auto", "auto"),
                                          ("maybe", None)])
def test_training_resume_is_false_true_or_auto(scene, value, meant):
    from deepseg_core.config import load_experiment
    from deepseg_core.errors import DeepSegError
    from deepseg_core.hpc.scripts import body

    _, experiment = scene
    path = experiment("flag", training={"resume": value})
    if meant is None:
        with pytest.raises(DeepSegError, match="training.resume"):
            load_experiment(path)
        return
    exp = load_experiment(path)
    assert exp.training.resume == meant
    _, lines = body(exp, "train", ["dataprep", "train"], 1)
    note = {False: "# training.resume: false: every submission trains afresh",
            True: "# training.resume: true: submitted again, this job continues",
            "auto": "# training.resume: auto: submitted again, this job continues"}[meant]
    assert any(line.startswith(note) for line in lines), lines

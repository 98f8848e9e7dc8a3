"""Training SIGKILLed in each state of its checkpoint commit, rerun with resume, equals one run.

``deepseg train`` runs in a subprocess that SIGKILLs itself at a chosen I/O boundary
(tests.support.child): with an epoch's checkpoint written but not committed, with the
commit's record written but its files still pending, at an epoch's end before anything of it
is durable, and after the last epoch's record, before its files are renamed. Each run
resumes from what the last one left; these are the states a kill at any instant leaves
(checkpoint.py commits by the record's rename alone). Each rerun sets ``training.resume:
true`` once a checkpoint record exists (as a user would). The final weights, the CSV log,
curves.png and the record must equal the uninterrupted run's bit for bit (CPU, fixed seed);
TensorBoard event files are not compared (they hold wall times). Random kills, for longer:
``benchmarks/kill_campaign.py``.
"""

from __future__ import annotations

import pytest

from tests.support.damage import overwrite_middle
from tests.support.kills import At, kill_then_finish
from tests.support.scenarios import Train, same_training

# under pytest-xdist, one worker runs this module: the uninterrupted run is made once
pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("train-kill")]

#: (kill point, the epoch committed after the kill), for the runs in turn: each resumes
KILLS = [(At(2, "replace", "state.json"), 1),  # epoch 2 saved, its record not yet renamed
         (At(1, "replace", "state.json", after=True), 2),  # epoch 2 committed, files pending
         (At(1, "fsync", "last.pending.keras"), 2),  # epoch 3 done, nothing of it durable
         (At(3, "replace", "state.json", after=True), 5)]  # the last record, files pending


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    """The scene's store and the uninterrupted run of the experiment (tests.support.scenarios)."""
    return Train(tmp_path_factory.mktemp("kill"))


def test_sigkilled_training_resumes_to_the_uninterrupted_run(training):
    outcome = kill_then_finish(training.args, [point for point, _ in KILLS],
                               prepare=training.prepare, probe=training.probe)
    assert outcome.states == [epoch for _, epoch in KILLS], outcome
    same_training(training.reference, training.finished())
    print(f"kills: {outcome.kills}, runs: {outcome.runs}, epochs committed at the kills: "
          f"{outcome.states}, resumed equal")


def test_a_damaged_checkpoint_is_never_taken_for_the_committed_one(training, tmp_path):
    from deepseg_core.errors import DeepSegError
    from deepseg_core.training.callbacks import load_resume_state

    model_dir = training.reference / "model"  # the uninterrupted run's, copied
    copy = tmp_path / "model"
    copy.mkdir()
    for p in model_dir.iterdir():
        copy.joinpath(p.name).write_bytes(p.read_bytes())
    last = copy / "last.keras"
    overwrite_middle(last, 64, 0)  # bytes overwritten mid-file
    with pytest.raises(DeepSegError, match=r"last.keras: does not match the checkpoint "
                                           r"record .*state.json \(damaged or replaced\)"):
        load_resume_state(copy, None)
    # a committed checkpoint still pending (killed before its rename) is found and used
    last.write_bytes((model_dir / "last.keras").read_bytes())
    last.rename(copy / "last.pending.keras")
    from deepseg_core.plugins import load_plugins

    plugin = load_plugins().registry.get("model", "unet64")
    model, record = load_resume_state(copy, plugin)
    assert record["epoch"] == 5 and model.optimizer.iterations.numpy() == record["iterations"]

"""The lines that make train, predict and merge jobs requeue themselves before their time
limit (hpc.signal_seconds), and their bash run without Slurm's daemons: USR1 sent from
outside, a stand-in ``scontrol`` on PATH. tests/hpc/test_requeue.py runs them on a real Slurm.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from deepseg_core.config import load_experiment
from deepseg_core.errors import ConfigError
from deepseg_core.hpc.scripts import write_scripts
from tests.support.cli import assert_one_line_error, deepseg
from tests.support.hpc import HPC, bash, tiny_experiment

SIGNAL = "#SBATCH --signal=B:USR1@120\n"
TRAP = 'if [[ -n "${SLURM_JOB_ID:-}" ]]; then trap requeue USR1; fi\n'


def scripts(tmp_path, training=None, **hpc) -> dict[str, str]:
    exp = load_experiment(tiny_experiment(tmp_path, size=40, hpc={**HPC, **hpc},
                                          training={"seed": 1, **(training or {})}))
    return {job: path.read_text() for job, path in
            write_scripts(exp, ["dataprep", "train", "predict"]).items()}


def test_resumable_jobs_ask_for_the_signal_and_requeue_themselves(tmp_path):
    texts = scripts(tmp_path / "auto", {"resume": "auto"})
    for job in ("train", "predict", "merge"):
        for line in (SIGNAL, "#SBATCH --requeue\n", "#SBATCH --open-mode=append\n", TRAP,
                     '  scontrol requeue "$SLURM_JOB_ID"\n'):
            assert line in texts[job], (job, line)
    assert 'run deepseg run "$EXPERIMENT" --stages train\n' in texts["train"]
    assert '  run deepseg predict "$EXPERIMENT" --shard "$shard/$SHARDS"\n' in texts["predict"]
    assert 'run deepseg merge "$EXPERIMENT"\n' in texts["merge"]
    assert "--signal" not in texts["dataprep"] and "trap" not in texts["dataprep"]

    # a training that starts afresh in every run is never requeued
    texts = scripts(tmp_path / "false", {"resume": False})
    assert "--signal" not in texts["train"] and "--requeue" not in texts["train"]
    assert "# No requeue at the time limit: with training.resume: false" in texts["train"]
    assert 'deepseg run "$EXPERIMENT"' in texts["train"] and "run deepseg" not in texts["train"]
    assert SIGNAL in texts["predict"]

    texts = scripts(tmp_path / "off", {"resume": "auto"}, signal_seconds=None)
    assert not any("--signal" in t or "trap" in t for t in texts.values())
    assert "#SBATCH --requeue\n" in texts["predict"] and "--requeue" not in texts["train"]


@pytest.mark.parametrize("hpc, message", [
    ({"signal_seconds": 0}, "hpc.signal_seconds: Input should be greater than or equal to 1"),
    ({"signal_seconds": 70000}, "hpc.signal_seconds: Input should be less than or equal to "
                                "65535"),
    ({"signal_seconds": "soon"}, "hpc.signal_seconds: Input should be a valid integer"),
    ({"signal_seconds": 300, "merge_time": "5"},
     "hpc: signal_seconds (300) must be shorter than merge_time ('5': 300 s): the job would "
     "be signalled, and requeued, as it starts; lower it or set it to null"),
    ({"signal_seconds": 7200, "train_time": "02:00:00"},
     "hpc: signal_seconds (7200) must be shorter than train_time ('02:00:00': 7200 s)"),
])
def test_a_bad_signal_lead_is_one_line(tmp_path, hpc, message):
    path = tiny_experiment(tmp_path, size=40, hpc={**HPC, **hpc})
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    [line] = err.value.problems
    assert line.startswith(f"{path}: {message}"), line


def test_deepseg_sbatch_refuses_a_signal_after_the_limit_writing_nothing(tmp_path):
    path = tiny_experiment(tmp_path, size=40, hpc={**HPC, "signal_seconds": 600})
    result = deepseg("sbatch", str(path))
    assert_one_line_error(result, "signal_seconds (600) must be shorter than train_time")
    assert not (tmp_path / "runs").exists()


def slurm_job(tmp_path, stub: str) -> tuple[str, dict[str, str]]:
    """merge.sh, and the environment of a Slurm job 77 whose scontrol records its arguments
    and whose deepseg is ``stub`` (a bash function)."""
    texts = scripts(tmp_path, {"resume": "auto"})
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "scontrol").write_text(f'#!/bin/bash\necho "$*" >> {tmp_path}/scontrol.txt\n')
    (tools / "scontrol").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update({"SLURM_JOB_ID": "77", "PATH": f"{tools}:{env['PATH']}",
                "BASH_FUNC_deepseg%%": stub})
    script = tmp_path / "merge.sh"
    script.write_text(texts["merge"])
    return str(script), env


def test_usr1_requeues_the_job_while_its_command_runs(tmp_path):
    # a program that ends only after the requeue: a trap that waited for it would never run
    program = tmp_path / "deepseg.sh"
    program.write_text(f'touch {tmp_path}/started\nuntil [[ -s {tmp_path}/scontrol.txt ]]; '
                       'do sleep 0.1; done\necho "deepseg $*"\n')
    script, env = slurm_job(tmp_path, f'() {{ bash {program} "$@"; }}')
    job = subprocess.Popen(["bash", script], env=env, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[0]
        time.sleep(0.05)
    job.send_signal(signal.SIGUSR1)  # as Slurm does, signal_seconds before the limit
    try:
        out, _ = job.communicate(timeout=60)
    finally:
        if job.poll() is None:  # the trap never ran: end the script and its program
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 0, out
    assert (tmp_path / "scontrol.txt").read_text() == "requeue 77\n"
    assert "deepseg: job 77: time limit near at " in out and "requeueing it\n" in out
    assert out.endswith(f"deepseg merge {tmp_path / 'exp.yaml'}\n"), out


@pytest.mark.parametrize("in_slurm", [True, False])
def test_a_failing_command_fails_the_job_with_its_status(tmp_path, in_slurm):
    script, env = slurm_job(tmp_path, "() { return 3; }")
    if in_slurm:
        done = subprocess.run(["bash", script], env=env, capture_output=True, text=True,
                              timeout=60)
    else:  # no SLURM_JOB_ID: the command runs in the foreground
        done = bash(script, **{"BASH_FUNC_deepseg%%": env["BASH_FUNC_deepseg%%"]})
    assert done.returncode == 3, done.stderr
    assert not (tmp_path / "scontrol.txt").exists()

"""Jobs that requeue themselves before their time limit: train, each prediction shard, merge.

Slurm sends the batch shell (``--signal=B:USR1@N``, ``hpc.signal_seconds``) USR1 about N s
before the time limit (up to a minute earlier: it looks at its jobs' times every 30 s or
so). The script's trap then runs ``scontrol requeue`` on its own job: Slurm ends this run
(SIGTERM, SIGKILL after KillWait) and queues the job again under the same id, so the jobs
that wait for it (``afterok``) keep waiting, and are not cancelled as after a time-out.

The next run continues from the last commit: the training from its last committed epoch
(``training.resume``), a shard from its last committed tiles, the merge from the start.
Nothing has to be written when the signal comes: commits are atomic, so a run ended at any
instant, even by SIGKILL, resumes to the result of an uninterrupted run. The work since the
last commit is done again.

A training with ``training.resume: false`` is not requeued: every run would start afresh
and none would finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.schema import Experiment

#: jobs whose next run continues from the last commit of the one before
RESUMABLE = ("train", "predict", "merge")


def signal_seconds(exp: Experiment, job: str) -> int | None:
    """The lead of ``job``'s USR1 before its time limit; None: no signal, no requeue."""
    if job not in RESUMABLE or exp.hpc.signal_seconds is None:
        return None
    if job == "train" and exp.training.resume is False:
        return None
    return exp.hpc.signal_seconds


def runner(exp: Experiment, job: str) -> str:
    """What precedes each long command of ``job``: 'run ' where the job requeues itself."""
    return "run " if signal_seconds(exp, job) else ""


def requeue_lines(exp: Experiment, job: str) -> list[str]:
    """The USR1 trap and the ``run`` function of a job that requeues itself (else a note)."""
    lead = signal_seconds(exp, job)
    if lead is None:
        if job == "train" and exp.hpc.signal_seconds is not None:
            return ["# No requeue at the time limit: with training.resume: false every run "
                    "would train afresh.", ""]
        return []
    return [f"# hpc.signal_seconds: Slurm sends this script USR1 {lead} s (up to a minute "
            "more) before", "# the time limit; it then requeues the job: Slurm ends this run "
            "and queues the job again", "# under the same id (the jobs after it keep waiting "
            "for it). The next run continues from", "# the last commit; commits are atomic, "
            "so the result is that of an uninterrupted run.",
            "requeue() {",
            '  echo "deepseg: job $SLURM_JOB_ID: time limit near at $(date): requeueing it"',
            '  scontrol requeue "$SLURM_JOB_ID"',
            "}",
            "run() {  # under Slurm in the background, so that the trap runs while it works",
            '  if [[ -z "${SLURM_JOB_ID:-}" ]]; then "$@"; return; fi',
            '  "$@" &',
            "  local child=$! status",
            "  while true; do  # wait again after the trap: the command ends when Slurm ends it",
            '    if wait "$child"; then return 0; else status=$?; fi',
            '    kill -0 "$child" 2>/dev/null || return "$status"',
            "  done",
            "}",
            'if [[ -n "${SLURM_JOB_ID:-}" ]]; then trap requeue USR1; fi', ""]

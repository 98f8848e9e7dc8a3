"""The training job's commands: one process, or one ``srun`` task per worker (multiworker)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .paths import binds_word
from .requeue import runner

if TYPE_CHECKING:
    from ..config.schema import Experiment


def gpu_count(gpus: str | None) -> int:
    """GPUs in a request such as 'A100:2' (0 for None)."""
    return int(str(gpus).rsplit(":", 1)[-1]) if gpus else 0


def train_tasks(exp: Experiment) -> tuple[int, int]:
    """(nodes, workers per node) of a multi-worker training job: one worker per GPU."""
    gpus = gpu_count(exp.hpc.train_gpus or exp.hpc.gpus)
    return exp.hpc.train_nodes, exp.hpc.train_tasks_per_node or max(1, gpus)


def resume_note(exp: Experiment) -> list[str]:
    """What submitting the training job again does, by training.resume."""
    if exp.training.resume == "auto":
        return ["# training.resume: auto: submitted again, this job continues its run from the "
                "last committed epoch."]
    if exp.training.resume:
        return ["# training.resume: true: submitted again, this job continues its run from the "
                "last committed epoch."]
    return ["# training.resume: false: every submission trains afresh (the earlier run moves "
            "to previous/);", "# set training.resume: auto so that a resubmitted job "
            "continues it instead."]


def srun_options(exp: Experiment, tasks: tuple[int, int], gpus: str | None) -> list[str]:
    """``srun``'s options for the workers' step.

    Since Slurm 22.05 ``srun`` no longer takes ``--cpus-per-task`` from ``sbatch``: without
    it every worker gets one core. ``--gpus-per-task`` gives each worker its share of the
    node's GPUs; ``--gpu-bind=none`` leaves all of the step's GPUs visible to each task
    (NCCL's peer-to-peer copies between the node's GPUs need them), and each worker keeps its
    own share by ``SLURM_LOCALID`` (hpc.gpus).
    """
    per_node, count = tasks[1], gpu_count(gpus)
    options = ["--kill-on-bad-exit=1", f"--cpus-per-task={exp.hpc.cpus_per_task}",
               "--cpu-bind=cores"]
    if count and count % per_node == 0:
        options += [f"--gpus-per-task={count // per_node}", "--gpu-bind=none"]
    return options


def multiworker_commands(exp: Experiment, run: Sequence[str], tasks: tuple[int, int],
                         gpus: str | None) -> list[str]:
    """``srun deepseg train`` (one task per worker), then crossval once."""
    nodes, per_node = tasks
    deepseg = "deepseg"
    if exp.hpc.container:  # srun starts a program, not the shell function of environment()
        deepseg = f'apptainer exec --nv --bind {binds_word(exp)} "$IMAGE" deepseg'
    lines = [f"# training.distribute: multiworker: {nodes} node(s) x {per_node} worker(s), "
             f"each worker one share of the GPUs ({gpus or 'none: CPU'});",
             "# the global batch is training.batch_size x workers. The cluster comes from "
             "srun (SlurmClusterResolver).", *resume_note(exp),
             "# srun does not inherit --cpus-per-task from sbatch (Slurm 22.05 on): both say it",
             f"export SRUN_CPUS_PER_TASK={exp.hpc.cpus_per_task}",
             'if [[ -n "${SLURM_JOB_ID:-}" ]] && command -v srun >/dev/null; then',
             f'  {runner(exp, "train")}srun {" ".join(srun_options(exp, tasks, gpus))} '
             f'{deepseg} train "$EXPERIMENT"',
             "else  # without Slurm: one process, which needs TF_CONFIG to find the others",
             '  deepseg train "$EXPERIMENT"', "fi"]
    if "crossval" in run:
        lines.append(f'{runner(exp, "train")}deepseg crossval "$EXPERIMENT"')
    return lines

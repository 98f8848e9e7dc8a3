"""The training job's commands: one process, or one ``srun`` task per worker (multiworker),
for training and for crossval, which trains its folds on the same workers."""

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


def worker_step(exp: Experiment, stage: str, tasks: tuple[int, int], gpus: str | None,
                target: str = '"$EXPERIMENT"', prefix: str = "") -> list[str]:
    """``srun deepseg STAGE TARGET``, one task per worker (one process without Slurm);
    ``prefix``: requeue.runner's, where the job requeues itself."""
    deepseg = "deepseg"
    if exp.hpc.container:  # srun starts a program, not the shell function of environment()
        deepseg = f'apptainer exec --nv --bind {binds_word(exp)} "$IMAGE" deepseg'
    return ['if [[ -n "${SLURM_JOB_ID:-}" ]] && command -v srun >/dev/null; then',
            f'  {prefix}srun {" ".join(srun_options(exp, tasks, gpus))} {deepseg} {stage} '
            f'{target}',
            "else  # without Slurm: one process, which needs TF_CONFIG to find the others",
            f"  deepseg {stage} {target}", "fi"]


def multiworker_commands(exp: Experiment, run: Sequence[str], tasks: tuple[int, int],
                         gpus: str | None) -> list[str]:
    """``srun deepseg train`` (one task per worker), then ``srun deepseg crossval`` on the
    same workers."""
    nodes, per_node = tasks
    run_prefix = runner(exp, "train")  # the train job's steps, crossval's included
    lines = [f"# training.distribute: multiworker: {nodes} node(s) x {per_node} worker(s), "
             f"each worker one share of the GPUs ({gpus or 'none: CPU'});",
             "# the global batch is training.batch_size x workers. The cluster comes from "
             "srun (SlurmClusterResolver).", *(resume_note(exp) if "train" in run else []),
             "# srun does not inherit --cpus-per-task from sbatch (Slurm 22.05 on): both say it",
             f"export SRUN_CPUS_PER_TASK={exp.hpc.cpus_per_task}"]
    if "train" in run:
        lines += worker_step(exp, "train", tasks, gpus, prefix=run_prefix)
    if "crossval" in run:
        lines += ["# crossval trains each fold as train does (the same workers and global "
                  "batch);", "# the chief alone evaluates the folds and writes the reports",
                  *worker_step(exp, "crossval", tasks, gpus, prefix=run_prefix)]
    return lines

"""Slurm job scripts of an experiment: plain bash that ``sbatch`` submits and ``bash`` runs alone.

``<outdir>/slurm/`` gets ``train.sh`` (dataprep, train, crossval), optionally ``crossval.sh``
(one array task per fold) and ``crossval-report.sh``, ``predict.sh`` (one array task per
shard), ``merge.sh``, and ``submit.sh`` that submits them in order with dependencies. Every
value of the experiment is written quoted (``quoting.py``): running a script runs only its
own commands, whatever the experiment file holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DeepSegError
from ..io.atomic import write_text
from .paths import absolute, binds_word, experiment_path, logs_folder, venv_folder
from .quoting import checked, log_folder, sbatch_word, shell_word, yaml_heredoc
from .submit import submit_lines

if TYPE_CHECKING:
    from ..config.schema import Experiment


def gpu_count(gpus: str | None) -> int:
    """GPUs in a request such as 'A100:2' (0 for None)."""
    return int(str(gpus).rsplit(":", 1)[-1]) if gpus else 0


def jobs_for(exp: Experiment, stages: Sequence[str]) -> list[str]:
    """The jobs that run ``stages``, in submission order."""
    jobs = []
    array = exp.hpc.crossval_array and "crossval" in stages
    if {"dataprep", "train"} & set(stages) or ("crossval" in stages and not array):
        jobs.append("train")
    if array:
        jobs += ["crossval", "crossval-report"]
    if "predict" in stages:
        jobs += ["predict", "merge"]
    return jobs


def train_tasks(exp: Experiment) -> tuple[int, int]:
    """(nodes, workers per node) of a multi-worker training job: one worker per GPU."""
    gpus = gpu_count(exp.hpc.train_gpus or exp.hpc.gpus)
    return exp.hpc.train_nodes, exp.hpc.train_tasks_per_node or max(1, gpus)


def header(exp: Experiment, job: str, what: str, time: str, gpus: str | None,
           array: str | None = None, requeue: bool = False,
           tasks: tuple[int, int] | None = None) -> list[str]:
    """The comment and '#SBATCH' lines that open a job script."""
    hpc, name = exp.hpc, exp.name  # the name is a safe word (config.safety)
    lines = ["#!/bin/bash", f"# DeepSeg job: {what}",
             f"# Experiment '{name}'; written by 'deepseg sbatch', edit freely.",
             f"# Submit: sbatch {job}.sh    Without Slurm: bash {job}.sh",
             f"#SBATCH --job-name={sbatch_word('name', f'{name}-{job}')}"]
    lines += [f"#SBATCH --{key}={sbatch_word(f'hpc.{key}', value)}" for key, value in (
        ("account", hpc.account), ("partition", hpc.partition), ("time", time),
        ("nodes", tasks and tasks[0]), ("ntasks-per-node", tasks and tasks[1]),
        ("mem", hpc.mem), ("cpus-per-task", hpc.cpus_per_task), ("gpus-per-node", gpus),
        ("array", array)) if value]
    pattern = "%x-%A_%a.out" if array else "%x-%j.out"
    logs = log_folder("hpc.logs", logs_folder(exp))
    lines.append(f"#SBATCH --output={sbatch_word('hpc.logs', f'{logs}/{pattern}')}")
    if requeue:  # a preempted or failed node puts the task back in the queue; logs append
        lines += ["#SBATCH --requeue", "#SBATCH --open-mode=append"]
    lines += [f"#SBATCH {option}" for option in hpc.extra_sbatch]
    return lines


def environment(exp: Experiment) -> list[str]:
    """Shell lines that load modules, activate the venv or set up the container."""
    hpc, lines = exp.hpc, ["", "set -eo pipefail"]
    if hpc.modules:
        names = " ".join(shell_word("hpc.modules", m) for m in hpc.modules)
        missing = shell_word("hpc.modules", "module: command not found; not loading "
                             + " ".join(hpc.modules))
        lines += ["# Environment modules (NeSI: 'module spider NAME' lists the versions)",
                  "if command -v module >/dev/null 2>&1; then", "  module purge",
                  f"  module load {names}", "else", f"  echo {missing} >&2", "fi"]
    venv = venv_folder(exp)
    if venv:
        lines += ["# shellcheck source=/dev/null",
                  f"source {shell_word('hpc.venv', venv / 'bin' / 'activate')}"]
    if hpc.container:
        lines += ["# deepseg runs inside the container; --nv passes the node's GPUs through",
                  f"IMAGE={shell_word('hpc.container', absolute(exp, hpc.container))}",
                  f"deepseg() {{ apptainer exec --nv --bind {binds_word(exp)} \"$IMAGE\" "
                  "deepseg \"$@\"; }"]
    lines += ["set -u", "export PYTHONUNBUFFERED=1  # log lines appear as they are written",
              f"EXPERIMENT={shell_word('the experiment path', experiment_path(exp))}",
              'echo "deepseg: job ${SLURM_JOB_ID:-local} on $(hostname) at $(date): $EXPERIMENT"',
              ""]
    return lines


def tasks(var: str, all_items: str) -> list[str]:
    """Lines choosing the array task's item, the items given as arguments, or all of them
    (``all_items``: a command filling ``var``), each checked to be a number."""
    return [f'if [[ -n "${{SLURM_ARRAY_TASK_ID:-}}" ]]; then {var}=("$SLURM_ARRAY_TASK_ID")',
            f'elif [[ $# -gt 0 ]]; then {var}=("$@")', f"else {all_items}; fi",
            f'for item in "${{{var}[@]}}"; do',
            '  [[ $item =~ ^[0-9]+$ ]] || { echo "not a task number: $item" >&2; exit 2; }',
            "done"]


def body(exp: Experiment, job: str, stages: Sequence[str],
         shards: int) -> tuple[list[str], list[str]]:
    """(header, commands) of one job."""
    hpc = exp.hpc
    folds = exp.crossval.folds if exp.crossval.folds is not None else list(range(exp.folds))
    if job == "train":
        run = [s for s in ("dataprep", "train", "crossval") if s in stages and not (
            s == "crossval" and hpc.crossval_array)]
        gpus = hpc.train_gpus or hpc.gpus
        if "train" in run and exp.training.distribute == "multiworker":
            workers = train_tasks(exp)
            head = header(exp, job, " + ".join(run), hpc.train_time, gpus, tasks=workers)
            return head, multiworker_commands(exp, run, workers, gpus)
        head = header(exp, job, " + ".join(run), hpc.train_time, gpus)
        notes = []
        if "train" in run and exp.training.distribute == "mirrored":
            notes = ["# training.distribute: MirroredStrategy trains on every GPU of this job",
                     f"# ({gpus or 'none: CPU'}) on one node; the global batch is "
                     "training.batch_size x GPUs."]
        elif "train" in run and gpu_count(gpus) > 1:
            notes = [f"# {gpus}: set training.distribute: mirrored to train on all of them."]
        notes += resume_note(exp) if "train" in run else []
        return head, [*notes, f'deepseg run "$EXPERIMENT" --stages {",".join(run)}']
    if job == "crossval":
        array = ",".join(str(f) for f in folds)
        head = header(exp, job, "crossval folds (one array task each)", hpc.train_time,
                      hpc.train_gpus or hpc.gpus, array=array)
        return head, ["# The task id is the fold; each task runs a one-fold copy of the "
                      "experiment.", *tasks("FOLDS", f"FOLDS=({' '.join(map(str, folds))})"),
                      'for fold in "${FOLDS[@]}"; do', *fold_yaml(exp, "$fold", "  "), "done"]
    if job == "crossval-report":
        head = header(exp, job, "crossval report over the finished folds", hpc.merge_time, None)
        return head, ["# crossval.folds: [] runs no fold, only the summary of finished folds",
                      *fold_yaml(exp, None)]
    if job == "predict":
        head = header(exp, job, f"prediction in {shards} shards (one array task each)",
                      hpc.predict_time, hpc.gpus, array=f"0-{shards - 1}", requeue=True)
        return head, ["# Under Slurm each array task predicts one shard. 'bash predict.sh' "
                      "runs every", "# shard in turn, 'bash predict.sh 2' shard 2 only. A "
                      "requeued or resubmitted task", "# ('sbatch --array=2 predict.sh') "
                      "resumes its shard where it stopped.", f"SHARDS={shards}",
                      *tasks("TASKS", "mapfile -t TASKS < <(seq 0 $((SHARDS - 1)))"),
                      'for shard in "${TASKS[@]}"; do',
                      '  deepseg predict "$EXPERIMENT" --shard "$shard/$SHARDS"', "done"]
    head = header(exp, job, "merge of the prediction shards", hpc.merge_time, None)
    return head, ['deepseg merge "$EXPERIMENT"']


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


def multiworker_commands(exp: Experiment, run: Sequence[str], tasks: tuple[int, int],
                         gpus: str | None) -> list[str]:
    """dataprep once, ``srun deepseg train`` (one task per worker), then crossval once."""
    nodes, per_node = tasks
    deepseg = "deepseg"
    if exp.hpc.container:  # srun starts a program, not the shell function of environment()
        deepseg = f'apptainer exec --nv --bind {binds_word(exp)} "$IMAGE" deepseg'
    lines = [f"# training.distribute: multiworker: {nodes} node(s) x {per_node} worker(s), "
             f"each worker one share of the GPUs ({gpus or 'none: CPU'});",
             "# the global batch is training.batch_size x workers. The cluster comes from "
             "srun (SlurmClusterResolver).", *resume_note(exp)]
    if "dataprep" in run:
        lines.append('deepseg dataprep "$EXPERIMENT"   # once, before the workers start')
    lines += ['if [[ -n "${SLURM_JOB_ID:-}" ]] && command -v srun >/dev/null; then',
              f'  srun --kill-on-bad-exit=1 {deepseg} train "$EXPERIMENT"',
              "else  # without Slurm: one process, which needs TF_CONFIG to find the others",
              '  deepseg train "$EXPERIMENT"', "fi"]
    if "crossval" in run:
        lines.append('deepseg crossval "$EXPERIMENT"')
    return lines


def fold_yaml(exp: Experiment, fold: str | None, indent: str = "") -> list[str]:
    """Lines writing a copy of the experiment that runs crossval on ``fold`` (a checked shell
    number; None: no fold, the report over finished folds) and running crossval on it.

    The copy extends the experiment, with its name and workdir, so its outputs and store are
    the experiment's. Its YAML is written now and goes into the script as a quoted heredoc;
    only the fold number is filled in when the job runs.
    """
    folder = shell_word("workdir", exp.outdir.resolve() / "slurm")
    target = f'{folder}/"fold{fold}.yaml"' if fold else f"{folder}/crossval-report.yaml"
    settings: dict[str, Any] = {"extends": checked("the experiment path", experiment_path(exp)),
                "name": exp.name, "workdir": checked("workdir", Path(exp.workdir).resolve())}
    if fold is None:
        settings["crossval"] = {"folds": []}
    tail = f'echo "crossval: {{folds: [{fold}]}}"' if fold else ""
    return [*yaml_heredoc(target, settings, indent, tail), f"{indent}deepseg crossval {target}"]


def write_scripts(exp: Experiment, stages: Sequence[str],
                  shards: int | None = None) -> dict[str, Path]:
    """Write the job scripts of ``stages`` and ``submit.sh``; returns job -> script path."""
    shards = shards or exp.hpc.shards
    folder = exp.outdir.resolve() / "slurm"
    texts = {}  # every script is composed (and every value checked) before one is written
    for job in jobs_for(exp, stages):
        head, commands = body(exp, job, stages, shards)
        texts[folder / f"{job}.sh"] = "\n".join([*head, *environment(exp), *commands]) + "\n"
    if not texts:
        raise DeepSegError(f"--stages: no job to write for {', '.join(stages) or 'no stage'}")
    scripts = {path.stem: path for path in texts}
    texts[folder / "submit.sh"] = "\n".join(submit_lines(scripts)) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    logs_folder(exp).mkdir(parents=True, exist_ok=True)  # sbatch does not create it
    for path, text in texts.items():
        write_text(path, text)
        path.chmod(0o755)
    return scripts

"""Slurm job scripts of an experiment: plain bash that ``sbatch`` submits and ``bash`` runs alone.

``<outdir>/slurm/`` gets ``dataprep.sh`` (CPU only), ``train.sh`` (train, crossval), optionally
``crossval.sh``
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
from .arrays import array_spec
from .paths import absolute, binds_word, experiment_path, logs_folder, venv_folder
from .quoting import checked, log_folder, sbatch_word, shell_word, yaml_heredoc
from .requeue import requeue_lines, runner, signal_seconds
from .submit import submit_lines
from .trainjob import gpu_count, multiworker_commands, resume_note, train_tasks, worker_step

__all__ = ["gpu_count", "jobs_for", "logs_folder", "write_scripts"]

if TYPE_CHECKING:
    from ..config.schema import Experiment


def jobs_for(exp: Experiment, stages: Sequence[str]) -> list[str]:
    """The jobs that run ``stages``, in submission order."""
    jobs = ["dataprep"] if "dataprep" in stages else []
    array = exp.hpc.crossval_array and "crossval" in stages
    if "train" in stages or ("crossval" in stages and not array):
        jobs.append("train")
    if array:
        jobs += ["crossval", "crossval-report"]
    if "predict" in stages:
        jobs += ["predict", "merge"]
    return jobs


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
    if tasks and tasks[0] > 1:  # whole nodes: no other job's traffic on the workers' links
        lines.append("#SBATCH --exclusive")
    signal = signal_seconds(exp, job)
    if requeue or signal:  # a preempted or failed node puts the task back in the queue;
        lines += ["#SBATCH --requeue", "#SBATCH --open-mode=append"]  # logs append
    if signal:  # USR1 to the batch shell only, which requeues the job (requeue.py)
        lines.append(f"#SBATCH --signal=B:USR1@{signal}")
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
    if hpc.env:
        lines.append("# hpc.env (values taken literally)")
    for line in hpc.env:  # names are checked shell names (config.hpc), values quoted
        name, value = line.split("=", 1)
        lines.append(f"export {name}={shell_word('hpc.env', value)}")
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
    if job == "dataprep":
        head = header(exp, job, "dataprep (CPU only: no GPU waits while the store is written)",
                      hpc.dataprep_time, None)
        return head, ['deepseg dataprep "$EXPERIMENT"']
    if job == "train":
        run = [s for s in ("train", "crossval") if s in stages and not (
            s == "crossval" and hpc.crossval_array)]
        gpus = hpc.train_gpus or hpc.gpus
        if exp.training.distribute == "multiworker":  # train and crossval on the workers
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
        return head, [*notes, f'{runner(exp, job)}deepseg run "$EXPERIMENT" --stages '
                             f'{",".join(run)}']
    if job == "crossval":
        array = array_spec(",".join(str(f) for f in folds), hpc.array_throttle)
        on = train_tasks(exp) if exp.training.distribute == "multiworker" else None
        head = header(exp, job, "crossval folds (one array task each)", hpc.train_time,
                      hpc.train_gpus or hpc.gpus, array=array, tasks=on)
        return head, ["# The task id is the fold; each task runs a one-fold copy of the "
                      "experiment.", *tasks("FOLDS", f"FOLDS=({' '.join(map(str, folds))})"),
                      'for fold in "${FOLDS[@]}"; do', *fold_yaml(exp, "$fold", "  ", on),
                      "done"]
    if job == "crossval-report":
        head = header(exp, job, "crossval report over the finished folds", hpc.merge_time, None)
        return head, ["# crossval.folds: [] runs no fold, only the summary of finished folds",
                      *fold_yaml(exp, None)]
    if job == "predict":
        head = header(exp, job, f"prediction in {shards} shards (one array task each)",
                      hpc.predict_time, hpc.gpus,
                      array=array_spec(f"0-{shards - 1}", hpc.array_throttle), requeue=True)
        return head, ["# Under Slurm each array task predicts one shard. 'bash predict.sh' "
                      "runs every", "# shard in turn, 'bash predict.sh 2' shard 2 only. A "
                      "requeued or resubmitted task", "# ('sbatch --array=2 predict.sh') "
                      "resumes its shard where it stopped.", f"SHARDS={shards}",
                      *tasks("TASKS", "mapfile -t TASKS < <(seq 0 $((SHARDS - 1)))"),
                      'for shard in "${TASKS[@]}"; do',
                      f'  {runner(exp, job)}deepseg predict "$EXPERIMENT" --shard '
                      '"$shard/$SHARDS"', "done"]
    head = header(exp, job, "merge of the prediction shards", hpc.merge_time, None)
    return head, [f'{runner(exp, job)}deepseg merge "$EXPERIMENT"']


def fold_yaml(exp: Experiment, fold: str | None, indent: str = "",
              workers: tuple[int, int] | None = None) -> list[str]:
    """Lines writing a copy of the experiment that runs crossval on ``fold`` (a checked shell
    number; None: no fold, the report over finished folds) and running crossval on it (with
    ``workers``, (nodes, per node): ``srun``, as multiworker training runs).

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
    run = [f"deepseg crossval {target}"] if workers is None else worker_step(
        exp, "crossval", workers, exp.hpc.train_gpus or exp.hpc.gpus, target)
    return [*yaml_heredoc(target, settings, indent, tail), *(indent + line for line in run)]


def write_scripts(exp: Experiment, stages: Sequence[str],
                  shards: int | None = None) -> dict[str, Path]:
    """Write the job scripts of ``stages`` and ``submit.sh``; returns job -> script path."""
    shards = shards or exp.hpc.shards
    folder = exp.outdir.resolve() / "slurm"
    texts = {}  # every script is composed (and every value checked) before one is written
    for job in jobs_for(exp, stages):
        head, commands = body(exp, job, stages, shards)
        texts[folder / f"{job}.sh"] = "\n".join([*head, *environment(exp),
                                                 *requeue_lines(exp, job), *commands]) + "\n"
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

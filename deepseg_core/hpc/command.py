"""``deepseg sbatch``, ``deepseg shards`` and ``deepseg files``: the cluster side of the CLI."""

from __future__ import annotations

import shlex

import click

from .. import hookimpl
from ..errors import DeepSegError
from ..stages import parse_stages

EXPERIMENT = click.argument("experiment", required=False, type=click.Path(dir_okay=False))


@click.command()
@EXPERIMENT
@click.option("--stages", help="comma-separated stages (default: the experiment's 'stages')")
@click.option("--shards", type=click.IntRange(1), help="prediction array size "
              "(default: hpc.shards; at most the raster's tile rows)")
@click.option("--submit", is_flag=True, help="submit the jobs with their dependencies")
def sbatch(experiment: str | None, stages: str | None, shards: int | None, submit: bool) -> None:
    """Write the Slurm job scripts of an experiment (and submit them)."""
    from ..stages import load
    from .arrays import check_arrays, max_array_size
    from .files import count_files
    from .scripts import gpu_count, logs_folder, write_scripts
    from .submit import submit_all

    chosen = parse_stages(stages, [])  # checked before the experiment: a typo fails at once
    exp = load(experiment)
    chosen = chosen or list(exp.stages)
    gpus = exp.hpc.train_gpus or exp.hpc.gpus
    if "train" in chosen and gpu_count(gpus) > 1 and exp.training.distribute == "none":
        click.echo(f"warning: hpc asks for {gpus} but training.distribute is none: "
                   "training uses one GPU", err=True)
    if "train" in chosen and exp.hpc.train_nodes > 1 and \
            exp.training.distribute != "multiworker":
        raise DeepSegError(f"hpc.train_nodes is {exp.hpc.train_nodes} but training.distribute "
                           f"is {exp.training.distribute}: set it to multiworker to train "
                           "across nodes")
    shards = prediction_shards(exp, chosen, shards or exp.hpc.shards)
    check_arrays(exp, chosen, shards, max_array_size())
    scripts = write_scripts(exp, chosen, shards)
    for job, path in scripts.items():
        click.echo(f"wrote {path}  ({job})")
    folder = next(iter(scripts.values())).parent
    click.echo(f"logs go to {logs_folder(exp)}; the experiment has "
               f"{count_files(exp)['total']} files and folders now ('deepseg files')")
    if not submit:  # commands to copy: quoted like the scripts' own values
        names = " && bash ".join(p.name for p in scripts.values())
        click.echo(f"submit: bash {shlex.quote(str(folder / 'submit.sh'))}   without Slurm: "
                   f"cd {shlex.quote(str(folder))} && bash {names}")
        return
    for job, job_id in submit_all(scripts).items():
        click.echo(f"submitted {scripts[job].name} as job {job_id}")
    click.echo("follow them with: squeue --me")


def prediction_shards(exp, stages: list[str], shards: int) -> int:
    """``shards``, at most the prediction raster's tile rows (saying so when it caps them)."""
    if "predict" not in stages:
        return shards
    from ..plugins.manager import get_registry
    from .arrays import fitted_shards, tile_rows

    shards, notice = fitted_shards(shards, tile_rows(exp, get_registry()))
    if notice:
        click.echo(notice, err=True)
    return shards


@click.command()
@EXPERIMENT
@click.option("--shards", type=click.IntRange(1), help="shards (default: hpc.shards)")
@click.option("--workers", type=click.IntRange(1), help="processes predicting at once "
              "(default: one per GPU given, else 2)")
def shards(experiment: str | None, shards: int | None, workers: int | None) -> None:
    """Predict in shards with a pool of processes, then merge (Slurm arrays without Slurm)."""
    from ..plugins.manager import get_registry
    from ..stages import load
    from .local import run_shards

    exp = load(experiment)
    run_shards(exp, get_registry(), shards or exp.hpc.shards, workers)


@click.command()
@EXPERIMENT
def files(experiment: str | None) -> None:
    """Count the files and folders an experiment created (inode quotas)."""
    from ..config import load_experiment
    from .files import count_files, describe

    exp = load_experiment(experiment, check_files=False)
    click.echo("\n".join(describe(exp, count_files(exp))))


@hookimpl(tryfirst=True)  # built-ins register first: others may override
def deepseg_register_commands(registry):
    """The cluster side of the CLI: ``deepseg sbatch``, ``shards`` and ``files``."""
    for command in (sbatch, shards, files):
        registry.add_command(command.name, command)

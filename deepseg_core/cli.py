"""The ``deepseg`` command: a thin face over functions the tests call directly."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import DeepSegError

STAGE_MODULES = {**{s: f"deepseg_core.stages.{s}" for s in ("dataprep", "train", "crossval")},
                 "predict": "deepseg_core.predict"}
EXPERIMENT = click.argument("experiment", required=False, type=click.Path(dir_okay=False))


def fail(message: str, code: int = 2):
    """Print a one-line error (no traceback) and exit non-zero."""
    for line in str(message).splitlines() or ["error"]:
        click.echo(f"error: {line}", err=True)
    sys.exit(code)


def load(experiment, check_files=True):
    """Load the experiment and check it against the registry."""
    from .config import check_registry, load_experiment
    from .plugins import get_plugins

    exp = load_experiment(experiment, check_files=check_files)
    loaded = get_plugins()
    for info in loaded.failures:  # the user may be about to miss what it registers
        click.echo(f"warning: plugin {info.name!r} failed ({info.error}); see 'deepseg plugins'",
                   err=True)
    check_registry(exp, loaded.registry)
    return exp


def run_stage(stage: str, exp, **options):
    """Run one stage of a loaded experiment."""
    from .plugins import get_registry

    module = importlib.import_module(STAGE_MODULES[stage])
    return module.run(exp, get_registry(), **options)


class Group(click.Group):
    """Turns DeepSegError into a one-line message and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DeepSegError as exc:
            fail(exc)
        except KeyboardInterrupt:
            fail("interrupted", 130)


@click.group(cls=Group)
@click.version_option(__version__, prog_name="deepseg")
def main():
    """DeepSeg: segmentation of very large remote-sensing rasters."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def plugins(as_json):
    """List plugins, their distributions and what they registered."""
    from .plugins import get_plugins

    loaded = get_plugins()
    rows = [{"name": p.name, "module": p.module, "distribution": p.distribution,
             "version": p.version, "builtin": p.builtin, "registered": p.registered,
             "error": p.error} for p in loaded.plugins]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        dist = f"{row['distribution'] or '?'} {row['version'] or ''}".strip()
        click.echo(f"{row['name']} ({dist}){' [built-in]' if row['builtin'] else ''}")
        if row["error"]:
            click.echo(f"  FAILED: {row['error']}")
        for kind, names in row["registered"].items():
            click.echo(f"  {kind}s: {', '.join(names)}")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="overwrite an existing file")
def init(path, force):
    """Write a commented experiment.yaml to start from."""
    from importlib.resources import files

    target = Path(path)
    if target.exists() and not force:
        raise DeepSegError(f"{target}: exists already (use --force to overwrite)")
    target.write_text(files("deepseg_core").joinpath("templates/experiment.yaml").read_text())
    click.echo(f"wrote {target}: edit images, labels and classes, then 'deepseg validate {target}'")


@main.command()
@EXPERIMENT
@click.option("--no-check-files", is_flag=True, help="do not check that input files exist")
def validate(experiment, no_check_files):
    """Validate an experiment and print the resolved config."""
    import yaml

    exp = load(experiment, check_files=not no_check_files)
    click.echo(yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False))
    click.echo(f"# {exp.source}: valid", err=True)


@main.command()
@EXPERIMENT
@click.option("--stages", help="comma-separated stages (default: the experiment's 'stages')")
def run(experiment, stages):
    """Run the experiment's stages in order."""
    from .config import STAGES

    chosen = None
    if stages is not None:  # checked before the experiment, so a typo fails at once
        chosen = [s.strip() for s in stages.split(",") if s.strip()]
        unknown = [s for s in chosen if s not in STAGES]
        if unknown or not chosen:
            what = f"unknown stage(s) {', '.join(unknown)}" if unknown else "no stage given"
            raise DeepSegError(f"--stages: {what}; expected some of {', '.join(STAGES)}")
    exp = load(experiment)
    chosen = chosen or exp.stages
    for stage in (s for s in STAGES if s in chosen):
        click.echo(f"== {stage}")
        run_stage(stage, exp)


def _stage_command(stage: str, doc: str):
    @main.command(name=stage, help=doc)
    @EXPERIMENT
    def command(experiment):
        run_stage(stage, load(experiment))

    return command


for _stage, _doc in (("dataprep", "Rasterize labels and write the tiles to the HDF5 store."),
                     ("train", "Train the model on the HDF5 store."),
                     ("crossval", "Cross-validate over the spatial folds.")):
    _stage_command(_stage, _doc)


@main.command()
@EXPERIMENT
@click.option("--shard", help="predict shard i of N ('i/N', 0-based)")
@click.option("--merge", "merge_only", is_flag=True, help="merge finished shards")
def predict(experiment, shard, merge_only):
    """Predict the experiment's rasters tile by tile."""
    exp = load(experiment)
    if merge_only:
        run_stage("predict", exp, merge=True)
    else:
        run_stage("predict", exp, shard=shard)


@main.command()
@EXPERIMENT
def merge(experiment):
    """Assemble the prediction shards into one output."""
    run_stage("predict", load(experiment), merge=True)


from .hpc.command import files, sbatch, shards  # noqa: E402 - registered after the core commands

main.add_command(sbatch)
main.add_command(shards)
main.add_command(files)
from .demo.command import demo  # noqa: E402

main.add_command(demo)

if __name__ == "__main__":
    main()

"""The ``deepseg`` command: a thin face over functions the tests call directly."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .errors import DeepSegError
from .stages import load, parse_stages, run_stage

if TYPE_CHECKING:
    from .config.schema import Experiment

EXPERIMENT = click.argument("experiment", required=False, type=click.Path(dir_okay=False))


def fail(message: object, code: int = 2) -> NoReturn:
    """Print a one-line error (no traceback) and exit non-zero."""
    for line in str(message).splitlines() or ["error"]:
        click.echo(f"error: {line}", err=True)
    sys.exit(code)


class Group(click.Group):
    """Turns DeepSegError into a one-line message and a non-zero exit, never a traceback; adds
    the commands that plugins register (``deepseg_register_commands``), loading the plugins
    only when a name is not the core's own or when the commands are listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or _plugin_commands().get(name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeepSegError as exc:
            fail(exc)
        except KeyboardInterrupt:
            fail("interrupted", 130)


def _plugin_commands() -> dict[str, click.Command]:
    from .plugins.manager import get_registry

    return {e.name: e.obj for e in get_registry().entries("command")}


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from .backend import describe

    click.echo(f"deepseg, version {__version__}\n{describe()}")
    ctx.exit()


@click.group(cls=Group)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Show the version and the Keras backend, then exit.")
def main() -> None:
    """DeepSeg: segmentation of very large remote-sensing rasters."""
    from .io.messages import show

    show()  # the engines report through logging; the CLI prints it (io/messages.py)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def plugins(as_json: bool) -> None:
    """List plugins, their distributions and what they registered."""
    from .plugins.manager import get_plugins

    loaded = get_plugins()
    rows: list[dict[str, Any]] = [
        {"name": p.name, "module": p.module, "distribution": p.distribution,
         "version": p.version, "builtin": p.builtin, "registered": p.registered,
         "error": p.error} for p in loaded.plugins]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from .backend import describe

    click.echo(describe())
    for row in rows:
        dist = f"{row['distribution'] or '?'} {row['version'] or ''}".strip()
        click.echo(f"{row['name']} ({dist}){' [built-in]' if row['builtin'] else ''}")
        if row["error"]:
            click.echo(f"  FAILED: {row['error']}")
        for kind, names in row["registered"].items():
            if kind == "model":
                names = [name + _runs_on(loaded.registry, name) for name in names]
            click.echo(f"  {kind}s: {', '.join(names)}")


def _runs_on(registry: Any, name: str) -> str:
    """' [tensorflow only]' for a model that runs on some backends only, else ''."""
    backends = getattr(registry.get("model", name), "backends", None)
    return f" [{' and '.join(backends)} only]" if backends else ""


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="overwrite an existing file")
def init(path: str, force: bool) -> None:
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
def validate(experiment: str | None, no_check_files: bool) -> None:
    """Validate an experiment and print the resolved config."""
    import yaml

    exp = load(experiment, check_files=not no_check_files)
    click.echo(yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False))
    click.echo(f"# {exp.source}: valid", err=True)


@main.command()
@EXPERIMENT
@click.option("--stages", help="comma-separated stages (default: the experiment's 'stages')")
def run(experiment: str | None, stages: str | None) -> None:
    """Run the experiment's stages in order."""
    chosen = parse_stages(stages, []) if stages is not None else None  # a typo fails at once
    exp = load(experiment)
    for stage in chosen or parse_stages(None, exp.stages):
        click.echo(f"== {stage}")
        run_stage(stage, exp)


def _stage_command(stage: str, doc: str) -> click.Command:
    @main.command(name=stage, help=doc)
    @EXPERIMENT
    def command(experiment: str | None) -> None:
        run_stage(stage, load(experiment))

    return command


for _stage, _doc in (("dataprep", "Rasterize labels and write the tiles to the HDF5 store."),
                     ("train", "Train the model on the HDF5 store."),
                     ("crossval", "Cross-validate over the spatial folds.")):
    _stage_command(_stage, _doc)


WORKERS = click.option("--workers", type=click.IntRange(1), help="threads assembling the "
                       "output (default: predict.merge_workers, else the CPUs given)")


def _with_workers(experiment: str | None, workers: int | None) -> Experiment:
    exp = load(experiment)
    if workers is not None:
        exp.predict.merge_workers = workers
    return exp


@main.command()
@EXPERIMENT
@click.option("--shard", help="predict shard i of N ('i/N', 0-based)")
@click.option("--merge", "merge_only", is_flag=True, help="merge finished shards")
@WORKERS
def predict(experiment: str | None, shard: str | None, merge_only: bool,
            workers: int | None) -> None:
    """Predict the experiment's rasters tile by tile."""
    exp = _with_workers(experiment, workers)
    if merge_only:
        run_stage("predict", exp, merge=True)
    else:
        run_stage("predict", exp, shard=shard)


@main.command()
@EXPERIMENT
@WORKERS
def merge(experiment: str | None, workers: int | None) -> None:
    """Assemble the prediction shards into one output."""
    run_stage("predict", _with_workers(experiment, workers), merge=True)


if __name__ == "__main__":
    main()

"""``deepseg demo``: generate a scene, write its experiment, run every stage, summarize.

Heavy libraries (rasterio, shapely, TensorFlow) are imported inside the functions, so that
importing this module (and ``deepseg --help``) stays fast.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import hookimpl
from ..errors import DeepSegError

if TYPE_CHECKING:
    from ..plugins.registry import Registry

DEFAULT_SIZE = 1024
DEFAULT_EPOCHS = 9
MARKER = "# DeepSeg demo experiment"


def prepare_workdir(folder: Path) -> None:
    """Create the folder, or clear a previous demo's outputs; refuse any other content."""
    if folder.exists() and not folder.is_dir():
        raise DeepSegError(f"--workdir {folder}: is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        yaml_path = folder / "experiment.yaml"
        if not (yaml_path.is_file() and yaml_path.read_text().startswith(MARKER)):
            raise DeepSegError(f"--workdir {folder}: not empty and not a DeepSeg demo folder; "
                               "choose a new or empty folder")
        for stale in ("demo", "stores"):
            shutil.rmtree(folder / stale, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def run_demo(workdir: str | Path, size: int = DEFAULT_SIZE, epochs: int = DEFAULT_EPOCHS,
             seed: int = 0, vectors: bool = True,
             crossval_folds: Sequence[int] = (0, 1, 2)) -> dict[str, Any]:
    """Generate the scene, write experiment.yaml, run the four stages; returns the summary."""
    from ..config import STAGES
    from ..stages import load, run_stage
    from .experiment import write_experiment
    from .scene import make_scene

    started, folder = time.monotonic(), Path(workdir)
    prepare_workdir(folder)
    click.echo(f"== scene: {size} x {size} px at 0.5 m in NZTM (EPSG:2193), seed {seed}")
    scene = make_scene(folder, size, seed)
    click.echo("   " + ", ".join(f"{n} {c}" for c, n in scene.counts.items()) + " polygons")
    exp = load(write_experiment(folder, size, epochs, seed, vectors, crossval_folds))
    results = {}
    for stage in STAGES:
        click.echo(f"== {stage}")
        results[stage] = run_stage(stage, exp)
    out = exp.outdir
    prediction = Path(results["predict"])
    summary = {
        "workdir": folder, "image": scene.image, "labels": scene.labels,
        "experiment": exp.source, "model": out / "model", "curves": out / "logs" / "curves.png",
        "crossval": out / "crossval" / "all_pycm.html", "prediction": prediction,
        "vectors": sorted(prediction.parent.glob("*.gpkg")) if vectors else [],
        "metrics": results["crossval"], "folds": len(exp.crossval.folds or []),
        "seconds": time.monotonic() - started,
    }
    print_summary(summary)
    return summary


def print_summary(s: dict[str, Any]) -> None:
    """Where every output is, and the cross-validated accuracy."""
    minutes, seconds = divmod(round(s["seconds"]), 60)
    vectors = ", ".join(str(p) for p in s["vectors"]) or "not written (vectorization disabled)"
    oa, miou = s["metrics"]["overall_accuracy"], s["metrics"]["mean_IoU"]
    lines = [
        f"DeepSeg demo finished in {minutes}m{seconds:02d}s",
        f"  image:       {s['image']}  (red, green, blue, NIR)",
        f"  labels:      {s['labels']}",
        f"  experiment:  {s['experiment']}",
        f"  model:       {s['model']}",
        f"  curves:      {s['curves']}",
        f"  crossval:    {s['crossval']}",
        f"  prediction:  {s['prediction']}",
        f"  vectors:     {vectors}",
        f"  cross-validated over {s['folds']} fold{'s' * (s['folds'] != 1)}: overall accuracy "
        f"{oa['mean']:.3f} ± {oa['std']:.3f}, mean IoU {miou['mean']:.3f} ± {miou['std']:.3f}",
        f"next: edit {s['experiment']} and run 'deepseg run {s['experiment']}'",
    ]
    click.echo("\n".join(lines))


def _folds(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    folds = [f.strip() for f in value.split(",") if f.strip()]
    if not folds or any(f not in ("0", "1", "2") for f in folds) or len(set(folds)) < len(folds):
        raise click.BadParameter(f"expected distinct folds of 0,1,2 such as '0' or '0,1,2', "
                                 f"got {value!r}")
    return [int(f) for f in folds]


@click.command()
@click.option("--workdir", default="deepseg-demo", show_default=True,
              type=click.Path(path_type=Path), help="folder for the scene and every output")
@click.option("--size", default=DEFAULT_SIZE, show_default=True, type=click.IntRange(192, 4096),
              help="scene side in pixels (0.5 m)")
@click.option("--epochs", default=DEFAULT_EPOCHS, show_default=True, type=click.IntRange(1),
              help="training epochs (of the model and of each crossval fold)")
@click.option("--seed", default=0, show_default=True, help="seed of the scene and of training")
@click.option("--crossval-folds", default="0,1,2", show_default=True, callback=_folds,
              help="crossval folds to run, of 0,1,2 (fewer: a quicker demo)")
@click.option("--no-vectors", is_flag=True, help="do not vectorize the prediction")
def demo(workdir: Path, size: int, epochs: int, seed: int, crossval_folds: list[int],
         no_vectors: bool) -> None:
    """Run every stage on a generated NZTM scene: no data needed."""
    run_demo(workdir, size, epochs, seed, not no_vectors, crossval_folds)


@hookimpl(tryfirst=True)  # built-ins register first: others may override
def deepseg_register_commands(registry: Registry) -> None:
    """``deepseg demo``."""
    registry.add_command("demo", demo)

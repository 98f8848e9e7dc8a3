"""``deepseg export``: the experiment's trained model as ONNX (and a SavedModel)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import hookimpl

if TYPE_CHECKING:
    from ..plugins.registry import Registry


@click.command()
@click.argument("experiment", required=False, type=click.Path(dir_okay=False))
@click.option("--format", "kind", type=click.Choice(["onnx", "savedmodel", "all"]),
              default="onnx", show_default=True, help="what to write")
@click.option("--output", type=click.Path(dir_okay=False), help="the .onnx file (default: "
              "<workdir>/<name>/export/<name>.onnx); a SavedModel goes beside it as "
              "<stem>_savedmodel/")
@click.option("--opset", type=click.IntRange(13, 23), help="ONNX opset (default: the "
              "converter's)")
def export(experiment: str | None, kind: str, output: str | None, opset: int | None) -> None:
    """Export the trained model for onnxruntime, QGIS's Deepness plugin or TF Serving."""
    from ..models.folder import trained_model
    from ..plugins.manager import get_registry
    from ..stages import load
    from .onnx import TOLERANCE, export_model

    exp = load(experiment)
    formats = ["onnx", "savedmodel"] if kind == "all" else [kind]
    trained = trained_model(exp.outdir, exp.nbands, exp.class_names)
    out = Path(output) if output else exp.outdir / "export" / f"{exp.outdir.name}.onnx"
    done = export_model(trained, get_registry(), out.resolve(), formats, opset)
    if "onnx" in done:
        click.echo(f"wrote {done['onnx']} (onnxruntime equals the Keras model within "
                   f"{done['difference']:.2g}, checked up to {TOLERANCE:g}); predict with it: "
                   f"model: {{name: onnx, path: {done['onnx']}}}")
    if "savedmodel" in done:
        click.echo(f"wrote {done['savedmodel']}")


@hookimpl(tryfirst=True)
def deepseg_register_commands(registry: Registry) -> None:
    registry.add_command("export", export)

"""The model folder's one home: ``model/model.json`` written after training and read with
care, a weights file picked that is whole (best.keras, else last.keras, saying so), and the
trained model loaded (Keras is imported only then)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import click
import numpy as np

from ..errors import DeepSegError
from ..io.atomic import write_text

INFO_KEYS = ("model", "params", "nbands", "tilesize", "overlap", "segmentation_type", "classes",
             "colours", "band_names", "crs", "resolution", "stats")
RETRAIN = "rerun 'deepseg train' to write it again"


def read_model_info(path: Path) -> dict:
    """model.json as a dict; a DeepSegError naming the file when it is truncated, not JSON or
    lacks keys that predict needs."""
    try:
        info = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise DeepSegError(f"{path}: not a text file; {RETRAIN}") from None
    except ValueError as exc:
        raise DeepSegError(f"{path}: truncated or not JSON ({exc}); {RETRAIN}") from None
    except OSError as exc:
        raise DeepSegError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(info, dict):
        raise DeepSegError(f"{path}: expected a JSON object, got {type(info).__name__}; "
                           f"{RETRAIN}")
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        raise DeepSegError(f"{path}: incomplete, missing {', '.join(missing)}; {RETRAIN}")
    return info


def damage(path: Path) -> str | None:
    """Why the .keras file at ``path`` is not whole (a .keras file is a zip), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member and checks its CRC
    except (zipfile.BadZipFile, EOFError) as exc:
        return f"not a complete .keras archive: {exc}"
    except OSError as exc:
        return exc.strerror or str(exc)
    return f"member {bad} is damaged" if bad else None


def pick_weights(model_dir: Path) -> Path | None:
    """best.keras if whole, else a whole last.keras (with a warning); None when neither exists.
    A DeepSegError names both files when every one found is damaged."""
    found = [p for p in (model_dir / "best.keras", model_dir / "last.keras") if p.exists()]
    problems = []
    for path in found:
        why = damage(path)
        if why is None:
            if problems:
                click.echo(f"warning: {problems[0]}; using {path.name} instead", err=True)
            return path
        problems.append(f"{path} is damaged ({why})")
    if problems:
        raise DeepSegError(f"{'; '.join(problems)}; rerun 'deepseg train'")
    return None


def load_model_info(outdir: Path, nbands: int, classes) -> tuple[dict, Path]:
    """model.json and a whole weights file of the experiment's trained model, checked against
    the experiment's bands and classes."""
    model_dir = outdir / "model"
    info_path = model_dir / "model.json"
    weights = pick_weights(model_dir) if info_path.exists() else None
    if weights is None:
        raise DeepSegError(f"no trained model in {model_dir}: run 'deepseg train' first")
    info = read_model_info(info_path)
    if info["nbands"] != nbands or info["classes"] != list(classes):
        raise DeepSegError(f"the model in {model_dir} was trained with nbands={info['nbands']} "
                           f"and classes {info['classes']}, the experiment has "
                           f"nbands={nbands} and classes {list(classes)}")
    return info, weights


def write_model_info(exp, store, model_dir: Path, run: str | None = None) -> None:
    """model.json: what predict needs besides the weights (normalization, bands, classes),
    and ``run``, the key of the training run (deepseg_core.training.reuse)."""
    info = model_info(exp, store.stats(), store.attrs["band_names"], store.attrs["crs"],
                      abs(store.attrs["transform"][1]))
    if run is not None:
        info["run"] = run
    write_text(model_dir / "model.json", json.dumps(info, indent=1))


def model_info(exp, stats: dict, band_names, crs, resolution) -> dict:
    """The content of model.json for a model of ``exp`` trained on data with ``stats``."""
    from ..contracts.raster import parse_colour

    return {"model": exp.model.name, "params": exp.model.params, "nbands": exp.nbands,
            "tilesize": exp.tilesize, "overlap": exp.overlap,
            "segmentation_type": exp.segmentation_type, "classes": exp.class_names,
            "colours": [list(parse_colour(c.color)) for c in exp.classes],
            "band_names": list(band_names), "crs": crs, "resolution": resolution,
            "stats": {k: np.asarray(v).tolist() for k, v in stats.items()}}


def load_model(registry, info: dict, weights: Path):
    """(model plugin, model) for a trained model described by its model.json."""
    from ..contracts.model import load_saved
    from .pretrained import load_problem

    plugin = registry.get("model", info["model"])
    try:
        model = load_saved(plugin, weights)
    except (OSError, ValueError) as exc:
        raise DeepSegError(f"{weights}: cannot load the trained model "
                           f"({load_problem(exc)})") from None
    return plugin, model

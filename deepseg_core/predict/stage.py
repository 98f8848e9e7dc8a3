"""The predict stage: plan the run, predict this shard (or everything), assemble the outputs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import DeepSegError
from .instances.run import merge_instance_shards, stitch_shard
from .plan import Plan, Settings, parse_shard
from .runner import tile_runner
from .semantic import assemble_outputs, predict_shard


def load_model_info(outdir: Path, nbands: int, classes) -> tuple[dict, Path]:
    """model.json and the weights file of the trained model (best, else last)."""
    model_dir = outdir / "model"
    info_path = model_dir / "model.json"
    weights = next((p for p in (model_dir / "best.keras", model_dir / "last.keras")
                    if p.exists()), None)
    if not info_path.exists() or weights is None:
        raise DeepSegError(f"no trained model in {model_dir}: run 'deepseg train' first")
    info = json.loads(info_path.read_text())
    if info["nbands"] != nbands or info["classes"] != list(classes):
        raise DeepSegError(f"the model in {model_dir} was trained with nbands={info['nbands']} "
                           f"and classes {info['classes']}, the experiment has "
                           f"nbands={nbands} and classes {list(classes)}")
    return info, weights


def run(exp, registry, shard=None, merge=False, progress=True):
    """Predict (one shard, or everything), then assemble the outputs unless sharded."""
    info, weights = load_model_info(exp.outdir, exp.nbands, exp.class_names)
    info["_mtime"] = int(weights.stat().st_mtime)
    settings = Settings.of(exp)
    i, n = parse_shard(shard)
    plan = Plan(settings, registry, info)
    try:
        if merge:
            return _finish(plan, registry, plan.count_shards())
        done = _predict_shard(plan, registry, info, weights, i, n, progress)
        if n > 1:
            click.echo(f"shard {i}/{n} done; run 'deepseg merge' when every shard is done")
            return done
        return _finish(plan, registry, 1)
    finally:
        plan.close()


def _predict_shard(plan, registry, info, weights, i: int, n: int, progress: bool):
    s = plan.settings
    idx, row0, row1 = plan.shard(i, n, context=1 if s.blend and n > 1 else 0)
    windows = [plan.windows[k] for k in idx]
    cores = {pos: plan.cores[k] for pos, k in enumerate(idx)}
    label = f"predict shard {i}/{n}" if n > 1 else "predict"
    run_tiles = tile_runner(registry, info, weights, plan.stack, windows, s, label, progress)
    if s.instance:
        return stitch_shard(plan, i, n, cores, run_tiles)
    return predict_shard(plan, run_tiles, windows, cores, (row0, row1), i, n)


def _finish(plan, registry, n: int):
    if plan.settings.instance:
        outputs = merge_instance_shards(plan, registry, n)
    else:
        outputs = assemble_outputs(plan, registry, n)
    click.echo("prediction: " + ", ".join(str(p) for p in outputs))
    return outputs[0]

"""The predict stage: plan the run, predict this shard (or everything), assemble the outputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ...inference.stream import tile_runner
from ...io.atomic import write_text
from ...models.folder import load_model_info
from .instances.route import merge_instance_shards, stitch_shard
from .instances.route import remove_shards as remove_instance_shards
from .plan import Plan, Settings, parse_shard
from .semantic import assemble_outputs, predict_shard, remove_shards

log = logging.getLogger(__name__)


def run(exp, registry, shard=None, merge=False):
    """Predict (one shard, or everything), then assemble the outputs unless sharded."""
    info, weights = load_model_info(exp.outdir, exp.nbands, exp.class_names)
    info["_mtime"] = weights.stat().st_mtime_ns  # a retrained model is another run
    settings = Settings.of(exp)
    i, n = parse_shard(shard)
    plan = Plan(settings, registry, info)
    try:
        done = _published(plan)
        if merge:
            found = plan.shards_found()
            if done is not None and found in (None, done["shards"]):  # merged already
                return _finish(plan, registry, done["shards"])
            return _finish(plan, registry, plan.count_shards())
        if n == 1 and done is not None and done["shards"] == 1:
            return _finish(plan, registry, 1)
        done = _predict_shard(plan, registry, info, weights, i, n)
        if n > 1:
            log.info(f"shard {i}/{n} done; run 'deepseg merge' when every shard is done")
            return done
        return _finish(plan, registry, 1)
    finally:
        plan.close()


def _predict_shard(plan, registry, info, weights, i: int, n: int):
    s = plan.settings
    idx, row0, row1 = plan.shard(i, n, context=1 if s.blend and n > 1 else 0)
    windows = [plan.windows[k] for k in idx]
    cores = {pos: plan.cores[k] for pos, k in enumerate(idx)}
    label = f"predict shard {i}/{n}" if n > 1 else "predict"
    run_tiles = tile_runner(registry, info, weights, plan.stack, windows, s, label)
    if s.instance:
        return stitch_shard(plan, i, n, cores, run_tiles)
    return predict_shard(plan, run_tiles, windows, cores, (row0, row1), i, n)


def _finish(plan, registry, n: int):
    """Assemble the ``n`` shards and publish the outputs, recording that they are; then
    delete the shards. The record stays: a rerun (after a kill while deleting, or after
    the end) finds the published outputs and only finishes the deleting."""
    record = _published_record(plan)
    state = _published(plan)
    if state is None or state["shards"] != n:
        if plan.settings.instance:
            outputs = merge_instance_shards(plan, registry, n)
        else:
            outputs = assemble_outputs(plan, registry, n)
        state = {"key": plan.key, "shards": n, "outputs": [str(p) for p in outputs]}
        write_text(record, json.dumps(state))
    (remove_instance_shards if plan.settings.instance else remove_shards)(plan, state["shards"])
    log.info("prediction: " + ", ".join(state["outputs"]))
    return Path(state["outputs"][0])


def _published_record(plan) -> Path:
    out = plan.settings.output
    return out.with_name(f".{out.name}.published.json")


def _published(plan) -> dict | None:
    """The record of outputs published but whose shards may not all be deleted yet."""
    try:
        state = json.loads(_published_record(plan).read_text())
    except (OSError, ValueError):
        return None
    outputs = [Path(p) for p in state.get("outputs", [])] if isinstance(state, dict) else []
    if state.get("key") != plan.key or not outputs or not all(p.exists() for p in outputs):
        return None
    return state

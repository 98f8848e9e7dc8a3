"""The predict stage: plan the run, predict this shard (or everything), assemble the outputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...inference.stream import tile_runner
from ...io.atomic import write_text
from ...io.lock import Lock
from ...models.exported import model_to_predict
from .key import mismatch
from .plan import Plan, Route, parse_shard
from .semantic import SEMANTIC
from .settings import Settings

if TYPE_CHECKING:
    from ...config.schema import Experiment
    from ...plugins.registry import Registry

log = logging.getLogger(__name__)


def _route(settings: Settings) -> Route:
    """The one place the kind matters. The instance route's libraries (shapely, pyogrio) are
    imported for instance models only, so semantic prediction runs without them."""
    if settings.instance:
        from .instances.route import INSTANCES

        return INSTANCES
    return SEMANTIC


def run(exp: Experiment, registry: Registry, shard: str | None = None,
        merge: bool = False) -> Path:
    """Predict (one shard, or everything), then assemble the outputs unless sharded."""
    trained = model_to_predict(exp)  # the trained model, or a file it was exported to
    settings = Settings.of(exp)
    route = _route(settings)
    i, n = parse_shard(shard)
    plan = Plan(settings, registry, trained)
    try:
        done = _published(plan, say=True)
        if merge:
            found = plan.shards_found()
            if done is not None and found in (None, done["shards"]):  # merged already
                return _finish(plan, route, registry, done["shards"])
            return _finish(plan, route, registry, plan.count_shards())
        if n == 1 and done is not None and done["shards"] == 1:
            return _finish(plan, route, registry, 1)
        with Lock(plan.partial_base(i, n), f"prediction shard {i}/{n}"):
            part = plan.shard(i, n)
            run_tiles = tile_runner(registry, trained, plan.stack, part.windows,
                                    settings.flow, part.label)
            written = route.predict_shard(plan, part, run_tiles)
        if n > 1:
            log.info(f"shard {i}/{n} done; run 'deepseg merge' when every shard is done")
            return written
        return _finish(plan, route, registry, 1)
    finally:
        plan.close()


def _finish(plan: Plan, route: Route, registry: Registry, n: int) -> Path:
    """Assemble the ``n`` shards and publish the outputs, recording that they are; then
    delete the shards. The record stays: a rerun (after a kill while deleting, or after
    the end) finds the published outputs and only finishes the deleting. One process at a
    time assembles an output (its lock)."""
    with Lock(plan.settings.output, "the prediction"):
        record = _published_record(plan)
        state = _published(plan)
        if state is None or state["shards"] != n:
            outputs = route.assemble(plan, registry, n)
            state = {"key": plan.publish_key, "shards": n,
                     "outputs": [str(p) for p in outputs]}
            write_text(record, json.dumps(state))
        route.remove_shards(plan, state["shards"])
    log.info("prediction: " + ", ".join(state["outputs"]))
    return Path(state["outputs"][0])


def _published_record(plan: Plan) -> Path:
    out = plan.settings.output
    return out.with_name(f".{out.name}.published.json")


def _published(plan: Plan, say: bool = False) -> dict[str, Any] | None:
    """The record of outputs published (under this run's key) whose shards may not all be
    deleted yet; ``say``: tell when outputs of other inputs or settings are there."""
    try:
        state = json.loads(_published_record(plan).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    outputs = [Path(p) for p in state.get("outputs", [])]
    if not outputs or not all(p.exists() for p in outputs):
        return None
    if state.get("key") != plan.publish_key:
        if say:
            what = mismatch(f"the published {outputs[0]}", state.get("key"), plan.publish_key)
            log.info(f"{what}: predicting again")
        return None
    return state

"""Semantic prediction: a shard's tiles into its partial, the partials into the outputs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ...io.sidecars import remove_output
from .assemble import Part, assemble, publish
from .partials import Partial, remove
from .plan import Plan, Route, Shard
from .writers import BlendWriter, CoreWriter, Encoding

if TYPE_CHECKING:
    from ...inference.stream import TileRunner
    from ...plugins.registry import Registry

log = logging.getLogger(__name__)


def encoding(plan: Plan) -> Encoding:
    """How the plan's results are stored."""
    s = plan.settings
    return Encoding(plan.info.dtype, plan.nodata, len(s.classes), s.probabilities,
                    s.commit_seconds)


def predict_shard(plan: Plan, shard: Shard, run_tiles: TileRunner) -> Path:
    """Predict the shard's windows into its partial (resuming a committed one)."""
    i, n, windows, cores = shard.i, shard.n, shard.windows, shard.cores
    partial = Partial(plan.partial_base(i, n), plan.shard_key(i, n))
    try:
        if partial.complete:
            log.info(f"shard {i}/{n} already complete: {partial.log}")
            return partial.log
        start = partial.done
        consume: CoreWriter
        if plan.settings.blend:
            consume = BlendWriter(partial, cores, encoding(plan), windows, plan.info.width,
                                  shard.rows, shard.stripes)
        else:
            consume = CoreWriter(partial, cores, encoding(plan))
        if start:
            log.info(f"resuming shard {i}/{n} after {start} of {len(windows)} tiles")
        run_tiles(consume, start)
        consume.finish(len(windows))
        return partial.log
    finally:
        partial.close()


def assemble_outputs(plan: Plan, registry: Registry, n: int) -> list[Path]:
    """The class raster (and probabilities, polygons) from the ``n`` finished partials,
    published together once every one is written and verified."""
    s = plan.settings
    out = s.output
    writer, reader_for = registry.writer_for(out, s.format), registry.reader_for
    parts = [Part(plan.partial_base(i, n), plan.shard_key(i, n), f"{i}/{n}",
                  plan.shard(i, n).rows) for i in range(n)]
    threads = s.merge_workers
    log.info(f"assembling {out.name} from {n} shard(s) in {threads} thread(s)")
    written = [assemble(parts, "classes", writer, reader_for, out, plan.info, threads=threads)]
    try:
        if s.probabilities != "none":
            prob_out = out.with_name(f"{out.stem}_probabilities{out.suffix}")
            written.append(assemble(parts, "probabilities", writer, reader_for, prob_out,
                                    plan.probabilities_info(), threads=threads))
        if s.vectorize is not None and s.vectorize.enabled:
            from .vectors import vectorize_output

            written.append(vectorize_output(reader_for(written[0]), written[0], out, plan.info,
                                            s.classes, s.vectorize))
    except BaseException:
        for tmp in written:
            remove_output(tmp)
        raise
    return publish(written)


def remove_shards(plan: Plan, n: int) -> None:
    """Delete the ``n`` shards' partials (once the outputs are published)."""
    for i in range(n):
        remove(plan.partial_base(i, n))


SEMANTIC = Route(predict_shard, assemble_outputs, remove_shards)

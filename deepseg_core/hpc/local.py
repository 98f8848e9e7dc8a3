"""Prediction shards on one machine: a process pool stands in for the Slurm job array."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeepSegError
from ..io.threads import available_cpus

if TYPE_CHECKING:
    from ..config.schema import Experiment
    from ..plugins.registry import Registry

log = logging.getLogger(__name__)


def _limit_threads(threads: int, gpus: Sequence[str] = (), slots=None, workers: int = 1) -> None:
    """Worker start-up: share the cores, and the GPUs one share each (read when TensorFlow or
    JAX starts); the shard's messages shown as the CLI shows them, without progress bars."""
    from ..io.messages import show

    show(progress=False)
    for var in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    if threads == 1:  # JAX's CPU client: one compute thread (it has no count in between)
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    if gpus and slots is not None:
        from .gpus import gpu_share

        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_share(list(gpus), slots.get(),
                                                                workers))


def _predict_shard(experiment: str, shard: str) -> str:
    """One shard in a worker process (a fresh interpreter: spawned, not forked)."""
    from ..config import load_experiment
    from ..plugins.manager import get_registry
    from ..stages import predict

    predict.run(load_experiment(experiment), get_registry(), shard=shard)
    return shard


def run_shards(exp: Experiment, registry: Registry, shards: int,
               workers: int | None = None) -> Path:
    """Predict ``shards`` shards with ``workers`` processes (default: one per GPU given, else
    2), then merge; returns the output. The workers share the CPU cores and GPUs that this
    process was given (a Slurm job's), not the node's."""
    from ..stages import predict
    from .gpus import visible_gpus

    if shards < 1 or (workers is not None and workers < 1):
        raise DeepSegError(f"--shards ({shards}) and --workers ({workers}) must be at least 1")
    if exp.source is None:
        raise DeepSegError("deepseg shards: the experiment must be loaded from a yaml file")
    gpus, cores = visible_gpus(), available_cpus()
    workers = min(workers or len(gpus) or 2, shards)
    threads = max(1, cores // workers)
    log.info(f"deepseg shards: {workers} worker(s) at once, each {threads} thread(s) of the "
             f"{cores} CPU core(s) given; GPUs: {','.join(gpus) or 'none'}")
    failed = []
    context = multiprocessing.get_context("spawn")
    slots = context.Queue()  # worker i of the pool takes slot i: its GPU share
    for i in range(workers):
        slots.put(i)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_limit_threads,
                             initargs=(threads, gpus, slots, workers)) as pool:
        futures = {pool.submit(_predict_shard, str(exp.source), f"{i}/{shards}"): i
                   for i in range(shards)}
        for future in as_completed(futures):
            i = futures[future]
            try:
                future.result()
                log.info(f"shard {i}/{shards} done")
            except Exception as exc:  # reported with its shard below
                reason = (str(exc).splitlines() or [type(exc).__name__])[0]
                failed.append(f"{i} ({reason})")
    if failed:
        raise DeepSegError(f"prediction shard(s) {', '.join(sorted(failed))} of {shards} failed; "
                           "run the same command again to resume them")
    return predict.run(exp, registry, merge=True)

"""Work spread over threads: the CPUs this process was given, and a function mapped over items
by a bounded pool of threads, its results handed on in the items' order.

The pool suits work that releases the GIL (zlib, GDAL reads and writes, numpy copies): a few
items per thread are in flight, so memory stays bounded however many items there are.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def available_cpus() -> int:
    """The CPUs this process may use: its CPU affinity (a Slurm step's or ``taskset``'s cores),
    no more than ``SLURM_CPUS_PER_TASK`` inside a Slurm job; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        cpus = min(cpus, int(slurm))
    return max(1, cpus)


def map_in_order(fn: Callable[[A], B], items: Iterable[A], threads: int,
                 stop: threading.Event | None = None, name: str = "deepseg",
                 pool: Executor | None = None) -> Generator[B, None, None]:
    """Yield ``fn(item)`` for each item, in order, computed by ``threads`` threads (in the
    calling thread for 1) with at most two items per thread in flight. ``stop`` set: no
    further item is started or handed on. An error of ``fn`` is raised where its result would
    have been yielded; closing the iterator early cancels what has not started and waits for
    what has. ``pool``: the caller's executor of ``threads`` workers (processes, say) instead
    of threads of its own; it stays open, and what it started is left to finish there."""
    if threads <= 1 and pool is None:
        for item in items:
            if stop is not None and stop.is_set():
                return
            yield fn(item)
        return
    source = iter(items)
    pending: deque[Future[B]] = deque()
    own = pool is None
    executor = ThreadPoolExecutor(threads, thread_name_prefix=name) if pool is None else pool
    try:
        more = True
        while more or pending:
            # two items per thread in flight: a thread never idles while its result waits
            while more and len(pending) < 2 * threads and not (stop and stop.is_set()):
                try:
                    pending.append(executor.submit(fn, next(source)))
                except StopIteration:
                    more = False
            if stop is not None and stop.is_set():
                return
            if pending:
                yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        if own:
            executor.shutdown(wait=True)  # no thread still works once the caller goes on


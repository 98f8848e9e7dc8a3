"""Batches of a store dataset made ahead by ``training.workers`` processes, for the input that
Keras' own PyDataset workers do not feed: TensorFlow's distributed input (mirrored and
multiworker), a tf.data stream from a generator (backend_tf.fit_input). The one-replica path
and JAX's (a PyDataset, dataset.WorkerShare) get the same processes from Keras.

A batch is a function of (epoch, step, part, parts) alone (dataset.py), so whichever process
makes it, it is the same: the weights and a resumed run do not depend on the workers. The
processes are forked once, from the thread that starts the loader, before the stream begins;
each holds the dataset (its own HDF5 handle, opened at its first batch) and makes the batches
asked of it, at most two per process ahead of the stream, so memory stays bounded. They die
with the training process, even SIGKILLed (Linux: the parent's death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from ..io.threads import map_in_order

#: (epoch, step, part, parts): one batch of a dataset (StoreDataset.batch)
Key = tuple[int, int, int, int]
log = logging.getLogger(__name__)


class Batches(Protocol):
    """What a loader needs of a dataset (dataset.StoreDataset)."""

    def batch(self, epoch: int, step: int, part: int = 0, parts: int = 1) -> tuple[Any, Any]:
        ...


_DATASET: Batches | None = None  # a loader process's dataset
PR_SET_PDEATHSIG = 1


def _adopt(dataset: Batches, parent: int) -> None:
    """A loader process starts: it holds ``dataset`` and dies with ``parent``."""
    global _DATASET
    with contextlib.suppress(OSError, AttributeError):  # not Linux: ends with its pipe
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was set
        os._exit(1)
    _DATASET = dataset


def _batch(key: Key) -> tuple[Any, Any]:
    assert _DATASET is not None, "a loader process holds its dataset"
    return _DATASET.batch(*key)


class Loader:
    """``batches(keys)``: ``dataset.batch(*key)`` for each key, in order, made by ``workers``
    forked processes (0: in the calling thread). ``close()`` ends the processes."""

    def __init__(self, dataset: Batches, workers: int) -> None:
        self.dataset, self.workers = dataset, workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            self._pool = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("fork"), initializer=_adopt,
                initargs=(dataset, os.getpid()))
            self._pool.submit(int).result()  # forks them all now, from this thread
            log.info(f"training: {workers} loader process(es) make the batches ahead")

    def batches(self, keys: Iterable[Key]) -> Iterator[tuple[Any, Any]]:
        """The batches of ``keys``, in order."""
        if self._pool is None:
            return (self.dataset.batch(*key) for key in keys)
        return map_in_order(_batch, keys, self.workers, pool=self._pool)

    def close(self) -> None:
        """End the processes (what they were making is dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

"""Streaming inference: reader threads, batched inference, a writer thread, bounded queues.

Reading the next batches and writing the last ones overlap with inference, so the model is
not left waiting on I/O; at most ``queue_depth`` batches wait on each side, so memory depends
on tile size, batch size, queue depth and reader count only. ``readers`` threads read at once
(readers.py); batches still reach the model, and tiles the writer, in tile order.

Batches are aligned to multiples of ``batch_size`` in the tile list, whatever ``start`` is: a
resumed run predicts the few tiles before ``start`` of its first batch again (without passing
them on), so the model sees the very batches of an uninterrupted run and its float results
are equal bit for bit (a kernel's arithmetic may depend on the batch it is given).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..contracts.raster import Window
from .readers import read_in_order

if TYPE_CHECKING:
    from ..contracts.model import TileResult

_END = object()

#: ``read(window) -> (normalized image (rows, cols, bands), valid (rows, cols))``
Read = Callable[[Window], "tuple[np.ndarray, np.ndarray]"]
#: ``predict(images (n, rows, cols, bands)) -> one result per image``
Predict = Callable[[np.ndarray], "list[TileResult]"]
#: ``consume(job)`` receives every tile's job, in tile order
Consume = Callable[["TileJob"], None]


@dataclass(frozen=True)
class Flow:
    """How tiles flow past the model: ``batch_size`` tiles a batch, at most ``queue_depth``
    batches waiting on each side of it, ``readers`` threads reading at once, and whether the
    model's prediction is XLA-compiled (``jit_compile``: "auto", True or False)."""

    batch_size: int
    queue_depth: int = 4
    readers: int = 1
    jit_compile: bool | str = "auto"


@dataclass
class TileJob:
    index: int  # position in the shard's tile list
    window: Window
    valid: np.ndarray  # (rows, cols) bool
    result: TileResult | None = None  # None for an all-nodata tile


class _Stop(Protocol):
    def is_set(self) -> bool: ...


class _Worker(threading.Thread):
    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # re-raised in the main thread
            self.error = exc


def _put(q: queue.Queue[Any], item: object, stop: _Stop) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def run_pipeline(read: Read, windows: Sequence[Window], predict: Predict, consume: Consume,
                 flow: Flow, start: int = 0, stop: threading.Event | None = None,
                 waits: dict[str, float] | None = None) -> None:
    """Predict ``windows[start:]`` in order (batches aligned to ``flow.batch_size``).

    ``read(window) -> (normalized image (r, c, b), valid)``, called from ``flow.readers``
    threads at once when there are several (so it must be thread-safe); ``predict(images) ->
    results``; ``consume(job)`` is called in tile order from the writer thread. ``waits``, a
    dict, gets the seconds the model waited for the readers (``"model_waited_s"``).
    """
    batch_size, queue_depth, readers = flow.batch_size, flow.queue_depth, flow.readers
    stop = stop or threading.Event()
    to_model: queue.Queue[Any] = queue.Queue(maxsize=queue_depth)  # (jobs, images), _END
    to_writer: queue.Queue[Any] = queue.Queue(maxsize=queue_depth)  # jobs, _END

    begin = start - start % batch_size  # the first batch as an uninterrupted run forms it

    def reader() -> None:
        jobs: list[TileJob] = []
        images: list[np.ndarray | None] = []
        for k, (image, valid) in read_in_order(read, windows[begin:], readers, stop):
            index = begin + k
            jobs.append(TileJob(index, windows[index], valid))
            images.append(image if valid.any() else None)
            if (index + 1) % batch_size == 0 or index == len(windows) - 1:
                if not _put(to_model, (jobs, images), stop):
                    return
                jobs, images = [], []
        _put(to_model, _END, stop)

    def writer() -> None:
        while True:
            item = to_writer.get()
            if item is _END:
                return
            for job in item:
                if job.index >= start:
                    consume(job)

    threads = [_Worker(reader), _Worker(writer)]
    for t in threads:
        t.start()
    try:
        waited = 0.0
        while True:
            began = time.perf_counter()
            item = _get(to_model, threads[0])
            waited += time.perf_counter() - began
            if item is _END:
                break
            jobs, images = item
            todo = [k for k, im in enumerate(images) if im is not None]
            if todo:
                results = predict(_padded([images[k] for k in todo], batch_size))
                for k, res in zip(todo, results):  # the padding's results are dropped
                    jobs[k].result = res
            if not _put(to_writer, jobs, _Halt(threads[1])):
                break
        _put(to_writer, _END, _Halt(threads[1]))
        threads[1].join()
        if waits is not None:
            waits["model_waited_s"] = waited
    finally:
        stop.set()
        threads[0].join()
    for t in threads:
        if t.error is not None:
            raise t.error


def _padded(images: list[np.ndarray], batch_size: int) -> np.ndarray:
    """``images`` stacked and filled with zero tiles to ``batch_size``: the model always sees
    one batch shape, so a compiled model (XLA, tf.function) is not compiled again for the
    last batch or one thinned by all-nodata tiles (seconds each on a GPU)."""
    stack = np.stack(images)
    if len(stack) >= batch_size:
        return stack
    fill = np.zeros((batch_size - len(stack), *stack.shape[1:]), stack.dtype)
    return np.concatenate([stack, fill])


class _Halt:
    """Stop waiting on a queue once the thread that drains it has died."""

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread

    def is_set(self) -> bool:
        return not self.thread.is_alive()


def _get(q: queue.Queue[Any], producer: _Worker) -> Any:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if not producer.is_alive():
                if producer.error is not None:
                    raise producer.error from None
                try:
                    return q.get_nowait()
                except queue.Empty:
                    return _END

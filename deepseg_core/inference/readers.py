"""Tiles read by several threads, each with its own raster handles, delivered in tile order.

GDAL (rasterio) datasets must not be shared between threads, so every reader thread opens its
own copy of the image stack on first use. GDAL decompresses and warps with the GIL released,
so reading, the costliest part of feeding a GPU, scales with the threads; the results are
handed on strictly in window order, which the partials' commit logic relies on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ..data.bandstats import normalizer
from ..io.threads import map_in_order

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..contracts.raster import Window
    from ..data.stack import ImageStack

T = TypeVar("T")


class TileReader:
    """``read(window) -> (normalized image (rows, cols, bands), valid)``, safe in any thread.

    The first thread to read uses ``stack``; every other thread opens ``stack.reopen()``.
    """

    def __init__(self, stack: ImageStack, stats: Mapping[str, ArrayLike]) -> None:
        self._stack, self._normalize = stack, normalizer(stats)
        self._local, self._lock = threading.local(), threading.Lock()
        self._owner: int | None = None
        self._opened: list[ImageStack] = []

    def _thread_stack(self) -> ImageStack:
        stack: ImageStack | None = getattr(self._local, "stack", None)
        if stack is None:
            with self._lock:
                if self._owner is None:
                    self._owner, stack = threading.get_ident(), self._stack
                else:
                    stack = self._stack.reopen()
                    self._opened.append(stack)
            self._local.stack = stack
        return stack

    def __call__(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        image, valid = self._thread_stack().read(window)
        image = self._normalize(np.moveaxis(image, 0, -1))
        image[~valid] = 0.0
        return image, valid

    def close(self) -> None:
        """Close the copies the extra threads opened (the original stays its owner's)."""
        with self._lock:
            for stack in self._opened:
                stack.close()
            self._opened = []


def read_in_order(read: Callable[[Window], T], windows: Sequence[Window], readers: int,
                  stop: threading.Event) -> Iterator[tuple[int, T]]:
    """Yield ``(index, read(windows[index]))`` in order, ``readers`` reads in flight at once."""
    results = map_in_order(read, windows, readers, stop, "deepseg-reader")
    try:
        yield from enumerate(results)
    finally:
        results.close()  # no thread may still read once the caller closes the stacks

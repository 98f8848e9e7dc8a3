"""Batches of store tiles for Keras: read by index, normalize, augment, hand to the model plugin.

Every batch is a function of (seed, epoch, step) alone, so a resumed run reads exactly the
batches an uninterrupted one would, and the workers of a distributed run can each read only
their own part of it:

- each epoch shuffles the tile indices with ``default_rng([seed, epoch])``; the order is
  filled up to a whole number of global batches with tiles from its start, so every batch is
  full and every replica takes the same number of steps (a collective all-reduce needs that);
- the global batch of a step is cut into one contiguous part per replica; a worker reads the
  tiles of its replicas' parts only;
- each tile is augmented with ``default_rng([seed, epoch, tile])``: the same tile gets the
  same augmentation whichever worker reads it, and different tiles get different draws.

Each process opens its own HDF5 handle (workers never share one), and only one batch of
tiles is in memory per worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from ..data.bandstats import normalizer
from ..store import Store

if TYPE_CHECKING:
    from _typeshed import StrPath
    from numpy.typing import ArrayLike

    from ..contracts.model import ModelPlugin, Params
    from .loaders import Loader

#: ``augment(image (rows, cols, bands), label (rows, cols), rng) -> (image, label)``
Augmenter = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Feed:
    """How store tiles become a model's batches: the model plugin (``prepare_batch``) and its
    parameters, the global batch size, the label excluded from the loss, the augmenters, and
    the seed of the shuffle and the augmentations."""

    plugin: ModelPlugin
    batch_size: int
    params: Params = field(default_factory=dict)
    ignore_label: int | None = None
    augmenters: tuple[Augmenter, ...] = ()
    seed: int = 0


class StoreDataset(keras.utils.PyDataset):
    """Tiles ``indices`` of the store at ``path`` as (x, y) batches for ``fit``, as ``feed``
    says; ``steps`` caps the batches of an epoch, ``workers`` processes read at once."""

    def __init__(self, path: StrPath, indices: ArrayLike, feed: Feed, shuffle: bool = False,
                 workers: int = 0, steps: int | None = None, **kwargs: Any) -> None:
        if workers:
            kwargs.update(workers=workers, use_multiprocessing=True)
        super().__init__(**kwargs)
        self.path, self.indices = str(path), np.asarray(indices, dtype=np.int64)
        self.batch_size, self.plugin = int(feed.batch_size), feed.plugin
        self.augmenters, self.shuffle, self.seed = list(feed.augmenters), shuffle, feed.seed
        self.ignore_label, self.epoch = feed.ignore_label, 0
        self.model_params = dict(feed.params or {})
        whole = int(np.ceil(len(self.indices) / self.batch_size))
        self.steps = min(whole, int(steps)) if steps else whole
        self._store: Store | None = None
        self._pid: int | None = None  # the process that opened _store
        self._loader: Loader | None = None
        with Store(self.path) as store:
            self.normalize = normalizer(store.stats())
            self.instance = store.instance
            self.instance_classes = store.instance_classes()

    def order(self, epoch: int) -> np.ndarray:
        """The tiles of ``epoch`` in the order they are served, filled to whole batches."""
        order = self.indices
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.indices)
        return np.resize(order, self.steps * self.batch_size)  # repeats from the start

    def tiles(self, epoch: int, step: int, part: int = 0, parts: int = 1) -> np.ndarray:
        """Tile indices of ``part`` (a replica) of the global batch ``step`` of ``epoch``."""
        size = self.batch_size // parts
        start = step * self.batch_size + part * size
        return self.order(epoch)[start:start + size]

    def loader(self) -> Loader:
        """The batches made ahead by this dataset's ``workers`` processes, for an input that
        Keras does not feed from them (loaders.py); started once, ended by ``close()``."""
        if self._loader is None:
            from .loaders import Loader

            self._loader = Loader(self, self.workers if self.use_multiprocessing else 0)
        return self._loader

    def close(self) -> None:
        """End the loader's processes, if any were started."""
        if self._loader is not None:
            self._loader.close()
            self._loader = None

    def _handle(self) -> Store:
        if self._store is None or self._pid != os.getpid():
            self._store, self._pid = Store(self.path), os.getpid()
        return self._store

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.batch(self.epoch, index)

    def batch(self, epoch: int, step: int, part: int = 0, parts: int = 1) -> tuple[Any, Any]:
        """The model's (x, y) for one replica's part of a global batch."""
        chosen = self.tiles(epoch, step, part, parts)
        store = self._handle()
        images, labels = [], []
        classes: list[dict[int, int]] = []
        for tile in np.sort(chosen).tolist():  # file order reads faster
            image, label, valid = store.tile(tile)
            image = self.normalize(image)
            image[~valid] = 0.0
            if not self.instance and self.ignore_label is not None:
                label = np.where(valid, label, self.ignore_label)
            rng = np.random.default_rng([self.seed, epoch, tile])
            for aug in self.augmenters:
                image, label = aug(image, label, rng)
            images.append(image)
            labels.append(label)
            if self.instance:
                assert self.instance_classes is not None, "dataprep writes instance_classes"
                ids = np.unique(label[label > 0])
                classes.append({int(i): int(self.instance_classes[i]) for i in ids})
        return self.plugin.prepare_batch(np.stack(images), np.stack(labels),
                                         classes if self.instance else None, self.model_params)


class WorkerShare(keras.utils.PyDataset):
    """Replicas ``first`` .. ``first + local - 1`` of ``parts`` of each global batch of
    ``dataset`` (at its current epoch), joined in replica order: what one process of a
    multi-worker run feeds its devices when its backend takes process-local batches (JAX)."""

    def __init__(self, dataset: StoreDataset, first: int, local: int, parts: int) -> None:
        super().__init__(workers=dataset.workers, use_multiprocessing=dataset.use_multiprocessing)
        self.dataset, self.first, self.local, self.parts = dataset, first, local, parts

    def __len__(self) -> int:
        return self.dataset.steps

    def __getitem__(self, step: int) -> tuple[Any, Any]:
        d = self.dataset
        batches = [d.batch(d.epoch, step, self.first + k, self.parts) for k in range(self.local)]
        return keras.tree.map_structure(lambda *a: np.concatenate(a), *batches)


class EpochSetter(keras.callbacks.Callback):
    """Tells the datasets which epoch starts: Keras' own epoch number, so resume needs no count."""

    def __init__(self, *datasets: StoreDataset | None) -> None:
        super().__init__()
        self.datasets = [d for d in datasets if d is not None]

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for dataset in self.datasets:
            dataset.epoch = epoch

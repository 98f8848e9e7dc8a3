"""Batches of store tiles for Keras: read by index, normalize, augment, hand to the model plugin.

Each process opens its own HDF5 handle (workers never share one), and only one batch of
tiles is in memory per worker.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from .stats import normalizer
from .store import Store


class StoreDataset(keras.utils.PyDataset):
    """Tiles ``indices`` of the store at ``path`` as (x, y) batches for ``fit``."""

    def __init__(self, path, indices, batch_size, model_plugin, augmenters=(), shuffle=False,
                 seed=0, ignore_label=None, workers=0, model_params=None, **kwargs):
        if workers:
            kwargs.update(workers=workers, use_multiprocessing=True)
        super().__init__(**kwargs)
        self.path, self.indices = str(path), np.asarray(indices, dtype=np.int64)
        self.batch_size, self.plugin = int(batch_size), model_plugin
        self.augmenters, self.shuffle, self.seed = list(augmenters), shuffle, seed
        self.ignore_label, self.epoch = ignore_label, 0
        self.model_params = dict(model_params or {})
        self._store, self._pid = None, None
        with Store(self.path) as store:
            self.normalize = normalizer(store.stats())
            self.instance = store.instance
            self.instance_classes = store.instance_classes()
        self.order = self._order()

    def _order(self):
        if not self.shuffle:
            return self.indices
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.indices)

    def _handle(self) -> Store:
        if self._store is None or self._pid != os.getpid():
            self._store, self._pid = Store(self.path), os.getpid()
        return self._store

    def __len__(self):
        return int(np.ceil(len(self.indices) / self.batch_size))

    def __getitem__(self, index):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        store = self._handle()
        rng = np.random.default_rng([self.seed, self.epoch, index])
        images, labels, classes = [], [], []
        for tile in sorted(chosen.tolist()):  # file order reads faster; shuffling picks the set
            image, label, valid = store.tile(tile)
            image = self.normalize(image)
            image[~valid] = 0.0
            if not self.instance and self.ignore_label is not None:
                label = np.where(valid, label, self.ignore_label)
            for aug in self.augmenters:
                image, label = aug(image, label, rng)
            images.append(image)
            labels.append(label)
            if self.instance:
                ids = np.unique(label[label > 0])
                classes.append({int(i): int(self.instance_classes[i]) for i in ids})
        return self.plugin.prepare_batch(np.stack(images), np.stack(labels),
                                         classes if self.instance else None, self.model_params)

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()

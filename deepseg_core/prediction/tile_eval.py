"""Evaluation of held-out store tiles: metrics over tile cores and the fold's error-map mosaic."""

from __future__ import annotations

import numpy as np
from affine import Affine

from ..metrics.errormap import error_map
from ..raster import RasterInfo, parse_colour
from ..stats import normalizer
from ..tiling import relative


class TileEvaluator:
    """Reads held-out tiles from the store; ``consume`` scores each predicted tile's core."""

    def __init__(self, exp, registry, store, metrics: dict, cores: dict, folder, stem: str):
        self.exp, self.store, self.metrics, self.cores = exp, store, metrics, cores
        self.index = {(int(r), int(c)): i for i, (r, c) in
                      enumerate(zip(store.tiles["row"], store.tiles["col"]))}
        self.normalize = normalizer(store.stats())
        self.instance_classes = store.instance_classes()
        self.sink = None
        self.path = folder / f"{stem}_errors.tif"
        self.registry = registry
        folder.mkdir(parents=True, exist_ok=True)

    def read(self, window):
        image, _, valid = self.store.tile(self.index[(window.row_off, window.col_off)])
        image = self.normalize(image)
        image[~valid] = 0.0
        return image, valid

    def consume(self, job) -> None:
        if job.result is None:
            return
        w = job.window
        _, truth, valid = self.store.tile(self.index[(w.row_off, w.col_off)])
        core = self.cores[(w.row_off, w.col_off)]
        rows, cols = relative(core, w)
        for metric in self.metrics.values():
            if metric.applies_to == "semantic" and job.result.probabilities is not None:
                metric.update(truth[rows, cols], job.result.classes[rows, cols],
                              valid=valid[rows, cols])
            elif metric.applies_to == "instance":
                ids = np.unique(truth[truth > 0])
                metric.update(truth, job.result.instances, valid=valid,
                              truth_classes={int(i): int(self.instance_classes[i]) for i in ids})
        if self.exp.crossval.error_maps and job.result.probabilities is not None:
            self._write_errors(truth[rows, cols], job.result.classes[rows, cols],
                               valid[rows, cols], core)

    def _write_errors(self, truth, pred, valid, core) -> None:
        colours = [parse_colour(c.color)[:3] for c in self.exp.classes]
        codes, colormap, names = error_map(truth, pred, self.exp.class_names,
                                           self.exp.ignore_label, valid,
                                           self.exp.crossval.positive_class, colours)
        if self.sink is None:
            attrs = self.store.attrs
            info = RasterInfo(attrs["width"], attrs["height"], 1, str(codes.dtype),
                              attrs["crs"] or None, Affine.from_gdal(*attrs["transform"]), 0,
                              ("errors",), colormap, tuple(names), True)
            self.sink = self.registry.writer_for(self.path).create(self.path, info)
        self.sink.write(codes[None], core)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()

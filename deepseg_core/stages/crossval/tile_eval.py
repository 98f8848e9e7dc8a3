"""Evaluation of held-out store tiles: metrics over tile cores and the fold's error-map mosaic."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine

from ...contracts.model import Instance
from ...contracts.raster import RasterInfo, RasterSink, Window, parse_colour
from ...data.bandstats import normalizer
from ...geo.tiling import relative
from ...metrics.errormap import error_map
from ...styles.raster import write_raster_style

if TYPE_CHECKING:
    from ...config.schema import Experiment
    from ...inference.pipeline import TileJob
    from ...metrics.base import Metric
    from ...plugins.registry import Registry
    from ...store.reader import Store


def paint(instances: Iterable[Instance], shape: tuple[int, ...]) -> np.ndarray:
    """Class per pixel from instances, higher scores on top (pixel statistics of instances)."""
    out = np.zeros(shape, dtype=np.int64)
    for inst in sorted(instances, key=lambda i: i.score):
        out[inst.window()][np.asarray(inst.mask, bool)] = inst.class_id
    return out


def _centre_in(box: Sequence[float], rows: slice, cols: slice) -> bool:
    r, c = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return rows.start <= r < rows.stop and cols.start <= c < cols.stop


def owned_instances(truth: np.ndarray, instances: Iterable[Instance], rows: slice,
                    cols: slice) -> tuple[np.ndarray, list[Instance]]:
    """Truth ids and predictions whose box centre lies in the tile core: each object is
    scored by one held-out tile only, as each pixel is."""
    keep = truth.copy()
    for i in np.unique(truth[truth > 0]):
        r, c = np.nonzero(truth == i)
        if not _centre_in((r.min(), c.min(), r.max() + 1, c.max() + 1), rows, cols):
            keep[keep == i] = 0
    return keep, [inst for inst in instances if _centre_in(inst.box, rows, cols)]


class TileEvaluator:
    """Reads held-out tiles from the store; ``consume`` scores each predicted tile's core."""

    def __init__(self, exp: Experiment, registry: Registry, store: Store,
                 metrics: dict[str, Metric], cores: dict[tuple[int, int], Window], folder: Path,
                 stem: str) -> None:
        self.exp, self.store, self.metrics, self.cores = exp, store, metrics, cores
        self.index = {(int(r), int(c)): i for i, (r, c) in
                      enumerate(zip(store.tiles["row"], store.tiles["col"]))}
        self.normalize = normalizer(store.stats())
        self.instance_classes = store.instance_classes()
        self.sink: RasterSink | None = None
        self.path = folder / f"{stem}_errors.tif"
        self.registry = registry
        folder.mkdir(parents=True, exist_ok=True)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """The normalized held-out tile at ``window`` and its validity."""
        image, _, valid = self.store.tile(self.index[(window.row_off, window.col_off)])
        image = self.normalize(image)
        image[~valid] = 0.0
        return image, valid

    def consume(self, job: TileJob) -> None:
        """Score a predicted tile's core (and add it to the error map)."""
        if job.result is None:
            return
        w = job.window
        _, truth, valid = self.store.tile(self.index[(w.row_off, w.col_off)])
        rows, cols = relative(self.cores[(w.row_off, w.col_off)], w)
        if self.store.instance:
            table = self.instance_classes
            assert table is not None, "an instance store has instance_classes"
            owned_truth, owned_pred = owned_instances(truth, job.result.instances, rows, cols)
            truth_classes = {i: int(table[i]) for i in np.unique(owned_truth) if i}
            for metric in self.metrics.values():
                if metric.applies_to == "instance":
                    metric.update(owned_truth, owned_pred, valid=valid,
                                  truth_classes=truth_classes)
            truth, pred = table[truth], paint(job.result.instances, truth.shape)
        else:
            pred = job.result.classes
        truth, pred, valid = truth[rows, cols], pred[rows, cols], valid[rows, cols]
        for metric in self.metrics.values():
            if metric.applies_to == "semantic":
                metric.update(truth, pred, valid=valid)
        if self.exp.crossval.error_maps:
            self._write_errors(truth, pred, valid, self.cores[(w.row_off, w.col_off)])

    def _write_errors(self, truth: np.ndarray, pred: np.ndarray, valid: np.ndarray,
                      core: Window) -> None:
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
        """Finish the error map and give it its QGIS style (its codes, colours and names)."""
        if self.sink is not None:
            self.sink.close()
            write_raster_style(self.path, self.sink.info)

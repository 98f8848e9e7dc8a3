"""Dataprep: images + labels -> overlapping tiles -> one HDF5 store (with stats and folds)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ...data.bandstats import BandStats
from ...data.scenes import Scene, place_scenes, training_scenes
from ...data.stack import ImageStack
from ...errors import DeepSegError
from ...geo.tiling import relative, tile_cores
from ...io.atomic import glob_escape
from ...io.lock import Lock
from ...io.progress import Progress
from ...store import StoreWriter
from ...store.identity import settings_hash, store_path
from ...store.reuse import existing_store
from .folds import scene_folds
from .labels import RasterLabels, VectorLabels, open_labels

if TYPE_CHECKING:
    from ...config.schema import Experiment, Labels
    from ...contracts.raster import Window
    from ...plugins.registry import Registry

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def run(exp: Experiment, registry: Registry) -> Path:
    """Build (or reuse) the experiment's store and return its path.

    One process writes a store at a time: another experiment of the same data settings (they
    share the store) waits for it, then reuses what it built."""
    scenes = training_scenes(exp)
    digest = settings_hash(exp)
    path = store_path(exp, digest)
    with Lock(path, "the store", wait=True):
        return _run(exp, registry, scenes, digest, path)


def _run(exp: Experiment, registry: Registry, scenes: list[Scene], digest: str,
         path: Path) -> Path:
    # a store named by its hash is ours to rebuild; one named by store.path may be another's
    replace = exp.store.replace or not exp.store.path
    if existing_store(path, digest, replace) == "reuse":
        log.info(f"reusing store {path} (built from the same data settings, checksums "
                 "verified)")
        return path
    for stale in path.parent.glob(f"{glob_escape(path.name)}.tmp-*"):
        stale.unlink(missing_ok=True)  # a killed writer's: the lock says no one writes now
    frame = place_scenes(exp, registry, scenes)
    writer: StoreWriter | None = None
    try:
        tally = Tally(exp)
        for scene in scenes:
            grid = scene.placed_grid
            with ImageStack(scene.images, registry, grid=grid, key=scene.key) as stack:
                if stack.nbands != exp.nbands:
                    what = "the images" if scene.key == "images" else scene.key
                    raise DeepSegError(f"{exp.source}: nbands is {exp.nbands} but {what} "
                                       f"stack to {stack.nbands} bands "
                                       f"({', '.join(stack.band_names)})")
                if writer is None:
                    writer = StoreWriter(path, exp.tilesize, exp.nbands, stack.dtype,
                                         tally.instance, exp.store.compression)
                    attrs = _attrs(exp, stack, digest)
                labels = open_labels(scene.labels, exp.classes, grid, registry, tally.instance)
                try:
                    _tile_scene(exp, registry, scene, stack, labels, writer, tally)
                finally:
                    if hasattr(labels, "close"):
                        labels.close()
        if writer is None or not writer.tiles:
            raise DeepSegError(f"{exp.source}: no tile holds both labels and image data; "
                               "check that labels and images overlap")
        table = np.array([(r, c, s) for r, c, _, _, s in writer.tiles])
        folds = scene_folds(exp, table[:, 0], table[:, 1], table[:, 2], len(scenes))
        attrs.update(transform=list(frame.transform.to_gdal()), width=frame.width,
                     height=frame.height, scenes=[s.record() for s in scenes])
        writer.commit(folds, attrs, tally.stats.as_dict(), tally.counts,
                      tally.instance_classes if tally.instance else None)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    _summary(path, len(table), tally.skipped, exp, tally.counts, folds, tally.instance)
    if len(scenes) > 1:
        per_scene = np.bincount(table[:, 2], minlength=len(scenes))
        log.info("scenes: " + ", ".join(f"{s.name}={int(n)}" for s, n in
                                        zip(scenes, per_scene)) + " tiles")
    return path


class Tally:
    """What dataprep accumulates over the scenes: statistics, class counts, skips, instances."""

    def __init__(self, exp: Experiment) -> None:
        self.instance = exp.segmentation_type == "instance"
        self.stats = BandStats(exp.nbands)
        self.counts = np.zeros(len(exp.classes), dtype=np.int64)
        self.skipped = {"nodata": 0, "unlabelled": 0}
        self.instance_classes: dict[int, int] = {}


def _tile_scene(exp: Experiment, registry: Registry, scene: Scene, stack: ImageStack,
                labels: VectorLabels | RasterLabels, writer: StoreWriter, tally: Tally) -> None:
    grid, t = scene.placed_grid, exp.tilesize
    if (grid.width < t or grid.height < t) and not exp.padding:
        raise DeepSegError(f"{exp.source}: tilesize {t} is larger than the raster "
                           f"({grid.width} x {grid.height}) of {scene.key} and padding is false")
    if np.dtype(stack.dtype) != writer.images.dtype and not np.can_cast(
            stack.dtype, writer.images.dtype, "safe"):
        raise DeepSegError(f"{exp.source}: {scene.key} are {np.dtype(stack.dtype)}, the first "
                           f"scene's {writer.images.dtype}: scenes need the same data type")
    windows = registry.get("tiler", exp.tiler)(grid.width, grid.height, t, exp.overlap)
    cores = tile_cores(windows, grid.width, grid.height)
    nclasses, min_labelled = len(exp.classes), scene.labels.min_labelled
    offset = max(tally.instance_classes, default=0)  # instance ids unique over the scenes
    bar = Progress(len(windows), f"dataprep tiles ({scene.name})")

    def load(window: Window) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Label, covered and (image, valid) unless too little is labelled; runs in a reader
        thread, one window ahead of the writer."""
        label, covered = labels.read(window)
        if not covered.any() or covered.mean() < min_labelled:
            return label, covered, None
        return label, covered, stack.read(window)

    for window, core, (label, covered, pixels) in zip(windows, cores, prefetch(load, windows)):
        bar.update()
        core_rc = relative(core, window)
        if pixels is None:
            tally.skipped["unlabelled"] += 1
            continue
        image, valid = pixels
        if not valid.any():
            tally.skipped["nodata"] += 1
            continue
        tally.stats.update(image[:, core_rc[0], core_rc[1]], valid[core_rc])
        label = _finish_label(label, covered, valid, exp, scene.labels, tally.instance)
        if tally.instance and offset:
            label = np.where(label > 0, label + offset, 0).astype(label.dtype)
        if not tally.instance:
            core_label = label[core_rc][valid[core_rc]]
            tally.counts += np.bincount(core_label[core_label < nclasses], minlength=nclasses)
        writer.add(np.moveaxis(image, 0, -1), label, valid, window.row_off + scene.row_off,
                   window.col_off + scene.col_off, grid.window_transform(window).to_gdal(),
                   scene.index)
    if tally.instance:
        tally.instance_classes.update({i + offset: c for i, c in
                                       (labels.instance_classes or {}).items()})


def prefetch(load: Callable[[T], R], items: Iterable[T], depth: int = 2) -> Iterator[R]:
    """``load(item)`` for each item, computed ``depth`` items ahead in a thread, in order."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(load, item))
                if len(pending) > depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _finish_label(label: np.ndarray, covered: np.ndarray, valid: np.ndarray, exp: Experiment,
                  labels_cfg: Labels, instance: bool) -> np.ndarray:
    if instance:
        return np.where(valid, label, 0).astype(label.dtype)
    if labels_cfg.outside == "ignore":
        label = np.where(covered, label, exp.ignore_label)
    return np.where(valid, label, exp.ignore_label).astype(np.uint16)


def _attrs(exp: Experiment, stack: ImageStack, digest: str) -> dict[str, Any]:
    from ...contracts.raster import parse_colour

    grid = stack.grid
    return {"crs": grid.crs or "", "transform": list(grid.transform.to_gdal()),
            "width": grid.width, "height": grid.height, "tilesize": exp.tilesize,
            "overlap": exp.overlap, "nbands": stack.nbands, "band_names": stack.band_names,
            "dtype": str(np.dtype(stack.dtype)), "classes": exp.class_names,
            "colours": [list(parse_colour(c.color)) for c in exp.classes],
            "segmentation_type": exp.segmentation_type, "folds": exp.folds,
            "ignore_label": exp.ignore_label, "settings_hash": digest}


def _summary(path: Path, ntiles: int, skipped: dict[str, int], exp: Experiment,
             counts: np.ndarray, folds: np.ndarray, instance: bool) -> None:
    size = path.stat().st_size / 2 ** 20
    log.info(f"store {path}: {ntiles} tiles written ({skipped['unlabelled']} unlabelled and "
             f"{skipped['nodata']} nodata tiles skipped), {size:.1f} MiB")
    per_fold = np.bincount(folds[folds >= 0], minlength=exp.folds)
    log.info(f"folds: {', '.join(str(n) for n in per_fold)} tiles"
             f"{f', {int((folds < 0).sum())} buffer tiles' if (folds < 0).any() else ''}")
    if not instance:
        log.info("labelled pixels: " + ", ".join(f"{n}={int(c)}" for n, c in
                                                  zip(exp.class_names, counts)))

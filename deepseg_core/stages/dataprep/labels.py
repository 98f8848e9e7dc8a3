"""Training labels on the grid, window by window: vector polygons or a label raster.

Semantic: class index per pixel (0 = background); instance: one id per polygon (1..n,
overlapping polygons keep distinct ids) with the class of each id in ``instance_classes``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...contracts.raster import Window
from ...data.stack import Grid, ImageStack, same_crs
from ...errors import DeepSegError

if TYPE_CHECKING:
    from ...config.schema import ClassSpec, Labels
    from ...plugins.registry import Registry


def class_lookup(classes: Sequence[ClassSpec], where: str) -> Callable[[Any], int]:
    """Map a label value (field value, layer name or raster value) to a class index."""
    table: dict[str, int] = {}
    for i, c in enumerate(classes):
        keys = [c.value] if c.value is not None else [i, c.name]
        for key in keys:
            table[str(key)] = i

    def lookup(value: Any) -> int:
        index = table.get(str(value).removesuffix(".0") if isinstance(value, float) else str(value))
        if index is None:
            known = ", ".join(sorted(table))
            raise DeepSegError(f"{where}: value {value!r} is not a class (known values: {known})")
        return index

    return lookup


class VectorLabels:
    """Polygons from one or more layers, reprojected to the grid and indexed by an STRtree."""

    def __init__(self, cfg: Labels, classes: Sequence[ClassSpec], grid: Grid,
                 instance: bool) -> None:
        import geopandas as gpd
        import pyogrio
        import shapely

        path, key = cfg.path, "labels.path"
        try:
            available = [name for name, _ in pyogrio.list_layers(path)]
        except Exception as exc:
            raise DeepSegError(f"{key}: cannot read {path}: {exc}") from None
        layers = cfg.layers or available
        missing = [la for la in layers if la not in available]
        if missing:
            raise DeepSegError(f"labels.layers: {path} has no layer(s) {', '.join(missing)}; "
                               f"it has {', '.join(available)}")
        lookup = class_lookup(classes, "labels.class_field" if cfg.class_field else "labels.layers")
        shapes: list[Any] = []  # shapely geometries
        ids: list[int] = []
        for layer in layers:
            frame = gpd.read_file(path, layer=layer)
            if cfg.class_field and cfg.class_field not in frame.columns:
                raise DeepSegError(f"labels.class_field: {path} layer {layer!r} has no field "
                                   f"{cfg.class_field!r} (fields: {', '.join(frame.columns[:-1])})")
            if frame.crs is not None and not grid.crs:
                raise DeepSegError(
                    f"images: the image grid has no CRS but the labels {path} (layer {layer!r}) "
                    f"are in {frame.crs.to_string()}; give the images their CRS (e.g. "
                    f"'gdal_edit.py -a_srs {frame.crs.to_string()} IMAGE') rather than let "
                    "dataprep guess that they match")
            if frame.crs is not None and grid.crs and not same_crs(frame.crs.to_wkt(), grid.crs):
                frame = frame.to_crs(grid.crs)
            values = frame[cfg.class_field] if cfg.class_field else [layer] * len(frame)
            ids.extend(lookup(v) for v in values)
            shapes.extend(frame.geometry.values)
        geoms = np.array(shapes, dtype=object)
        empty = shapely.is_empty(geoms) | shapely.is_missing(geoms)
        if empty.any():
            warnings.warn(f"{path}: {int(empty.sum())} empty geometries skipped", stacklevel=2)
        invalid = ~empty & ~shapely.is_valid(geoms)
        if invalid.any():
            warnings.warn(f"{path}: {int(invalid.sum())} invalid geometries repaired", stacklevel=2)
            geoms[invalid] = shapely.make_valid(geoms[invalid])
        keep = ~empty
        self.geoms, self.classes = geoms[keep], np.asarray(ids, dtype=np.int64)[keep]
        if len(self.geoms) == 0:
            raise DeepSegError(f"{key}: {path} holds no usable geometries")
        self.instance_classes: dict[int, int] | None = {
            i + 1: int(c) for i, c in enumerate(self.classes)}
        self.tree = shapely.STRtree(self.geoms)
        self.grid, self.cfg, self.instance = grid, cfg, instance
        box = shapely.box(*grid.window_bounds(Window(0, 0, grid.height, grid.width)))
        if len(self.tree.query(box, predicate="intersects")) == 0:
            raise DeepSegError(f"{key}: the labels in {path} do not overlap the images")

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Burned labels ``(rows, cols)`` and which pixels a label covers."""
        import shapely
        from rasterio.features import rasterize

        shape = (window.height, window.width)
        dtype = np.uint32 if self.instance else np.uint16
        box = shapely.box(*self.grid.window_bounds(window))
        hits = np.sort(self.tree.query(box, predicate="intersects"))
        if len(hits) == 0:
            return np.zeros(shape, dtype), np.zeros(shape, dtype=bool)
        values = hits + 1 if self.instance else self.classes[hits] + 1
        burned = rasterize(zip(self.geoms[hits], values.tolist()), out_shape=shape,
                           transform=self.grid.window_transform(window), fill=0,
                           all_touched=self.cfg.all_touched, dtype="uint32")
        covered = burned > 0
        out = burned if self.instance else np.where(covered, burned - 1, 0)
        return out.astype(dtype), covered


class RasterLabels:
    """A label raster resampled (nearest) onto the grid, values mapped to class indices."""

    def __init__(self, cfg: Labels, classes: Sequence[ClassSpec], grid: Grid,
                 registry: Registry) -> None:
        from ...config.schema import ImageSource

        src = ImageSource(path=cfg.raster or "", resampling="nearest", reproject=True)
        self.stack = ImageStack([src], registry, key="labels.raster", grid=grid)
        self.lookup = class_lookup(classes, f"labels.raster {cfg.raster}")
        self.instance_classes: dict[int, int] | None = None

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        data, valid = self.stack.read(window)
        raw = data[0]
        out = np.zeros(raw.shape, dtype=np.uint16)
        for value in np.unique(raw[valid]):
            out[valid & (raw == value)] = self.lookup(int(value))
        return out, valid

    def close(self) -> None:
        self.stack.close()


def open_labels(cfg: Labels, classes: Sequence[ClassSpec], grid: Grid, registry: Registry,
                instance: bool) -> VectorLabels | RasterLabels:
    """The configured label source on ``grid``."""
    if cfg.raster:
        if instance:
            raise DeepSegError("labels.raster: instance experiments need vector labels "
                               "(one polygon per object)")
        return RasterLabels(cfg, classes, grid, registry)
    return VectorLabels(cfg, classes, grid, instance)

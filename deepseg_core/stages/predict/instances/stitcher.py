"""Instance stitching: per-tile detections to one polygon per object (DESIGN §4).

Ownership rule, for a detection in a tile with core window ``core``:

1. a detection touching an edge of its tile is cut and dropped, unless that edge is the
   raster edge (then there is no more of the object to see);
2. a whole detection is kept by the tile whose core holds its box centre, the core grown by
   ``tolerance`` px for models whose boxes move a little from one tile to the next.

With cores cut halfway through each overlap, an object that some tile sees whole is seen
whole by the tile owning its centre too, so the rule loses only objects that no tile sees
whole (larger than the overlap and badly placed): make the overlap larger than the objects.
The duplicates this leaves are removed by a spatial-index pass (:mod:`merge`),
streamed by tile rows; outputs are written as rows become final (:mod:`output`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from affine import Affine
from shapely.geometry import shape

from ....contracts.model import Instance
from ....contracts.raster import RasterInfo, Window
from ....errors import DeepSegError
from ....geo.vectorize import pixel_shapes, to_map
from .duplicates import Columns, DuplicateMerger, concat_columns
from .options import StitchOptions
from .output import CandidateOutput, ClassNames, InstanceOutput, OnCommit, WriteBlock

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def instances_to_map(instances: list[Instance], tile_window: Window, transform: Affine,
                     multipart: bool = False) -> list[dict[str, Any]]:
    """A tile's instances as map polygons with class_id, score, area and box centre (raster px)."""
    # transform: the tile's geotransform; a mask in several parts keeps its largest part
    instances, extents = _with_extents(instances)
    geoms = _polygons(instances, extents, transform, multipart)
    return [{"geometry": g, "class_id": int(i.class_id), "score": float(i.score),
             "area": float(g.area),
             "centre_row": tile_window.row_off + (i.box[0] + i.box[2]) / 2,
             "centre_col": tile_window.col_off + (i.box[1] + i.box[3]) / 2}
            for g, i in zip(geoms, instances)]


def owned(tile_window: Window, core_window: Window, height: int, width: int,
          extent: ArrayLike, box: ArrayLike | None = None,
          tolerance: float = 0.0) -> np.ndarray:
    """Which detections a tile keeps under the ownership rule (module docstring)."""
    # extent (mask) and box: (n, 4) raster pixel row0, col0, row1, col1, ends exclusive
    e = np.asarray(extent, float).reshape(-1, 4)
    b = e if box is None else np.asarray(box, float).reshape(-1, 4)
    v, c, t = tile_window.clip(height, width), core_window, tolerance
    v1r, v1c = v.row_off + v.height, v.col_off + v.width
    cut = (((e[:, 0] <= v.row_off) & (v.row_off > 0)) | ((e[:, 1] <= v.col_off) & (v.col_off > 0))
           | ((e[:, 2] >= v1r) & (v1r < height)) | ((e[:, 3] >= v1c) & (v1c < width)))
    row, col = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    in_core = ((row >= c.row_off - t) & (row < c.row_off + c.height + t)
               & (col >= c.col_off - t) & (col < c.col_off + c.width + t))
    return ~cut & in_core


class InstanceStitcher:
    """Stitches instances fed tile by tile, in row-major order, into final outputs.

    Without ``shard``: a GeoPackage layer ``instances`` (instance_id, class_id, class_name,
    score, area) and, through ``write_block(array, window)``, an instance-id raster (uint32,
    0 = nodata); both are written as rows of tiles become final, so memory holds about two
    rows of tiles' instances. With ``shard=True`` the owned detections are written undecided
    to a ``candidates`` layer, for :func:`shards.merge_shards`; ``on_commit`` see
    :class:`CandidateOutput`.
    """

    def __init__(self, info: RasterInfo, out_path: Path, class_names: ClassNames | None = None,
                 write_block: WriteBlock | None = None, options: StitchOptions | None = None,
                 *, shard: bool = False, on_commit: OnCommit | None = None) -> None:
        o = options or StitchOptions()
        self.info, self.tolerance = info, o.tolerance
        self.simplify, self.multipart = o.simplify, o.multipart
        names = class_names if class_names is not None else (info.class_names or ())
        self.merger = None if shard else DuplicateMerger(o.iou, o.ios, o.per_class)
        self.output: CandidateOutput | InstanceOutput
        if shard:
            self.output = CandidateOutput(info, out_path, on_commit=on_commit)
        else:
            self.output = InstanceOutput(
                info, out_path, names, write_block, block_size=o.block_size,
                write_empty=o.write_empty,
                geometry_type="MultiPolygon" if o.multipart else "Polygon")
        self.stats: Counter = Counter()
        self._stripe: int | None = None  # the tile row being collected
        self._batch: list[Columns] = []
        self._count = 0

    def add_tile(self, tile_window: Window, core_window: Window, instances: list[Instance],
                 transform: Affine | None = None) -> None:
        """Add a tile's instances; ``transform`` is the tile's geotransform (default: from info)."""
        if transform is None:
            transform = self.info.window_transform(tile_window)
        instances, extents = _with_extents(instances)
        extent = np.array(extents, int).reshape(-1, 4)
        offset = np.array([tile_window.row_off, tile_window.col_off] * 2)
        box = np.array([i.box for i in instances], float).reshape(-1, 4) + offset
        keep = owned(tile_window, core_window, self.info.height, self.info.width,
                     extent + offset, box, self.tolerance)
        mine = [i for i, k in zip(instances, keep) if k]
        geoms = _polygons(mine, [e for e, k in zip(extents, keep) if k], transform,
                          self.multipart)
        self._add(tile_window, len(instances), geoms, [i.class_id for i in mine],
                  [i.score for i in mine], (extent + offset)[keep])

    def add_polygons(self, tile_window: Window, core_window: Window,
                     geometries: ArrayLike, class_ids: ArrayLike,
                     scores: ArrayLike, extents: ArrayLike,
                     boxes: ArrayLike | None = None) -> None:
        """Add a tile's detections given as map polygons with raster pixel extents (and boxes)."""
        keep = owned(tile_window, core_window, self.info.height, self.info.width, extents,
                     boxes, self.tolerance)
        self._add(tile_window, len(keep), np.asarray(geometries, dtype=object)[keep],
                  np.asarray(class_ids)[keep], np.asarray(scores)[keep],
                  np.asarray(extents).reshape(-1, 4)[keep])

    def resume(self, candidates: Iterable[tuple[int, Columns]], stripe: int, tiles: int) -> None:
        """Shard mode: take back and commit an interrupted run's ``(stripe, columns)``
        candidates of its first ``tiles`` tiles (stripes up to ``stripe``); the next tile
        added is tile number ``tiles``."""
        if not isinstance(self.output, CandidateOutput):
            raise DeepSegError("only a shard's stitcher (shard=True) resumes candidates")
        for row, columns in candidates:
            self.output.add(row, columns)
        self.output.commit(stripe, tiles)
        self._count = tiles

    def add_candidates(self, stripe: int, columns: Columns) -> None:
        """Add owned candidates that start at or below raster row ``stripe`` (shard merge)."""
        self.stats["candidates"] += len(columns["geometry"]) if columns else 0
        self._collect(stripe, columns)

    def finish(self) -> dict[str, Any]:
        """Decide and write everything left; a summary of counts."""
        self._flush(float("inf"))
        summary = self.output.close()
        if self.merger is not None:
            summary["duplicates"] = self.merger.duplicates
        return {**dict(self.stats), **summary}

    def _add(self, tile_window: Window, detections: int, geometries: ArrayLike,
             class_ids: ArrayLike, scores: ArrayLike, extents: ArrayLike) -> None:
        geoms = np.asarray(geometries, dtype=object)
        if self.simplify and len(geoms):
            geoms = _valid(shapely.simplify(geoms, self.simplify, preserve_topology=True),
                           self.multipart)
        solid = ~shapely.is_empty(geoms)
        geoms = geoms[solid]
        self.stats.update(tiles=1, detections=detections, candidates=len(geoms))
        self._collect(tile_window.row_off, {
            "geometry": geoms, "class_id": np.asarray(class_ids)[solid].astype("int32"),
            "score": np.asarray(scores)[solid].astype("float64"),
            "extent": np.asarray(extents).reshape(-1, 4)[solid].astype("int64").reshape(-1, 4)})

    def _collect(self, stripe: int, columns: Columns) -> None:
        if self._stripe is not None and stripe < self._stripe:
            raise DeepSegError(f"tiles must come in row-major order: row {stripe} came after "
                               f"row {self._stripe}")
        if self._stripe is not None and stripe > self._stripe:
            self._flush(stripe)
            if isinstance(self.output, CandidateOutput):
                self.output.commit(self._stripe, self._count)
        self._stripe = stripe
        self._batch.append(columns)
        self._count += 1

    def _flush(self, future_row: float) -> None:
        batch, self._batch = concat_columns(self._batch), []
        if isinstance(self.output, CandidateOutput):
            if self._stripe is not None:  # None: nothing was collected
                self.output.add(self._stripe, batch)
        elif self.merger is not None:
            kept, final_row = self.merger.feed(batch, future_row)
            self.output.add(kept)
            self.output.burn_until(final_row)


def _with_extents(instances: Iterable[Instance],
                  ) -> tuple[list[Instance], list[tuple[int, int, int, int]]]:
    """The instances with pixels, and their extents in tile pixels."""
    pairs = [(i, e) for i in instances if (e := i.extent()) is not None]
    return [i for i, _ in pairs], [e for _, e in pairs]


def _polygons(instances: Sequence[Instance], extents: Sequence[tuple[int, int, int, int]],
              transform: Affine, multipart: bool) -> np.ndarray:
    """One polygon (the largest 4-connected part, or all parts) per instance, in map
    coordinates; ``extents`` are the instances' in tile pixels, ``transform`` the tile's."""
    geoms = []
    for inst, (r0, c0, r1, c1) in zip(instances, extents):
        rows, cols = inst.window()
        crop = np.ascontiguousarray(
            inst.mask[r0 - rows.start:r1 - rows.start, c0 - cols.start:c1 - cols.start],
            dtype=np.uint8)
        parts = [shape(g) for g, _ in pixel_shapes(crop, crop.astype(bool), c0, r0)]
        geoms.append(shapely.multipolygons(parts) if multipart
                     else max(parts, key=lambda p: p.area))
    return _valid(to_map(geoms, transform), multipart) if geoms else np.array([], object)


def _valid(geoms: np.ndarray, multipart: bool) -> np.ndarray:
    """Geometries made valid; a repair that splits one keeps all parts or the largest."""
    for i in np.flatnonzero(~shapely.is_valid(geoms)).tolist():
        fixed = shapely.make_valid(geoms[i], method="structure", keep_collapsed=False)
        parts = shapely.get_parts(fixed)
        if multipart:
            geoms[i] = shapely.multipolygons(parts)
        else:
            geoms[i] = max(parts, key=lambda p: p.area) if len(parts) else shapely.Polygon()
    return geoms


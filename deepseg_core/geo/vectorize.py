"""Streaming polygonization of a class raster into a GeoPackage layer (DESIGN §4).

The raster is read block by block through ``read_block(window)``, so any reader works and
memory depends on the block size, never on the raster size. Each block is polygonized with
``rasterio.features.shapes`` (4-connected, in raster pixel coordinates so that coordinates on
shared block edges are exact integers). A piece touching no internal block edge is final and
written at once. Pieces touching internal edges are linked pixel by pixel to the same-class
pieces across the edge, exactly where a whole-raster polygonization would join them; each
linked group is dissolved into one polygon as soon as it can grow no more, i.e. once the row
of blocks below has been read. Polygons are moved to map coordinates at the end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from shapely.geometry import shape

from ..contracts.raster import RasterInfo, Window
from .gpkg import GpkgAppender, class_name

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

#: an internal block edge: the class and the piece id (-1: none) of each of its pixels
Edge = tuple[np.ndarray, np.ndarray]

_SHAPES_DTYPES = {"int8", "int16", "int32", "uint8", "uint16", "float32", "float64"}
COLUMNS: dict[str, DTypeLike] = {"class_id": "int32", "class_name": object, "area": "float64"}


def vectorize_raster(read_block: Callable[[Window], np.ndarray], info: RasterInfo,
                     out_path: Path, class_names: Sequence[str] | Mapping[int, str] | None = None,
                     *, skip: Iterable[float] = (0,), min_area: float = 0.0,
                     simplify: float = 0.0, block_size: int = 1024, layer: str = "classes",
                     chunk: int = 50_000) -> dict[str, Any]:
    """Polygonize a class raster block by block into a GeoPackage; per-class counts and areas."""
    # read_block(window) -> (rows, cols) or (1, rows, cols); skip: values not polygonized
    # (nodata is added); min_area in map units² before simplify; simplify: tolerance in map
    # units (shapely, topology preserved); class_names: a sequence indexed by value or a dict
    names = class_names if class_names is not None else (info.class_names or ())
    skipped = set(skip) | ({info.nodata} if info.nodata is not None else set())
    out = GpkgAppender(out_path, layer, info.crs, COLUMNS, "Polygon", chunk)
    polygons: defaultdict[int, int] = defaultdict(int)
    area_of: defaultdict[int, float] = defaultdict(float)

    def emit(pieces: np.ndarray, classes: np.ndarray) -> None:
        geoms, values = _finish(pieces, classes, info.transform, min_area, simplify)
        areas = shapely.area(geoms)
        out.add(geoms, class_id=values, area=areas,
                class_name=[class_name(names, v) for v in values])
        for value, area in zip(values.tolist(), areas.tolist()):
            polygons[value] += 1
            area_of[value] += area

    groups = _EdgeGroups()
    above: Edge | None = None  # the last pixel row of the previous row of blocks
    for r0 in range(0, info.height, block_size):
        h = min(block_size, info.height - r0)
        top: list[Edge] = []
        bottom: list[Edge] = []
        left: Edge | None = None
        for c0 in range(0, info.width, block_size):
            window = Window(r0, c0, h, min(block_size, info.width - c0))
            block = _as_2d(read_block(window))
            valid = ~np.isin(block, list(skipped))
            geoms, values = _polygonize(block, valid, window)
            uids = groups.new_ids(len(geoms))
            sides = {"top": r0 > 0, "bottom": r0 + h < info.height,
                     "left": c0 > 0, "right": c0 + window.width < info.width}
            edges = _edge_ids(block, valid, geoms, uids, window, sides)
            touching = np.isin(uids, np.concatenate([ids for _, ids in edges.values()] + [[]]))
            emit(geoms[~touching], values[~touching])
            groups.add(uids[touching], geoms[touching], values[touching])
            if "left" in edges:
                assert left is not None, "the block on the left has a right edge"
                groups.link(*left, *edges["left"])
            left = edges.get("right")
            if "top" in edges:  # every block but those of the first row
                top.append(edges["top"])
            if "bottom" in edges:  # every block but those of the last row
                bottom.append(edges["bottom"])
        if above is not None:
            groups.link(*above, *_concat(top))
        above = _concat(bottom) if r0 + h < info.height else None
        for geoms, values in groups.close(open_ids=above[1] if above else ()):
            emit(geoms, values)
    out.close()
    return {"polygons": dict(polygons), "area": dict(area_of), "path": str(out_path),
            "layer": layer}


class _EdgeGroups:
    """Pieces touching internal block edges, grouped by a union-find over shared edges."""

    def __init__(self) -> None:
        self.next_id = 0
        self.parent: dict[int, int] = {}
        self.pieces: dict[int, tuple[Any, int]] = {}  # id -> (shapely geometry, class)

    def new_ids(self, n: int) -> np.ndarray:
        """``n`` new piece ids."""
        self.next_id += n
        return np.arange(self.next_id - n, self.next_id)

    def add(self, uids: np.ndarray, geoms: np.ndarray, values: np.ndarray) -> None:
        """Pieces that touch an internal edge, each its own group for now."""
        for uid, geom, value in zip(uids.tolist(), geoms, values.tolist()):
            self.parent[uid] = uid
            self.pieces[uid] = (geom, value)

    def find(self, uid: int) -> int:
        """The root of the group of piece ``uid`` (paths compressed on the way)."""
        root = uid
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[uid] != root:
            self.parent[uid], uid = root, self.parent[uid]
        return root

    def link(self, values_a: np.ndarray, ids_a: np.ndarray, values_b: np.ndarray,
             ids_b: np.ndarray) -> None:
        """Join pieces facing each other across an edge with the same class, pixel by pixel."""
        same = (ids_a >= 0) & (ids_b >= 0) & (values_a == values_b)
        for a, b in np.unique(np.stack([ids_a[same], ids_b[same]], axis=1), axis=0).tolist():
            ra, rb = self.find(a), self.find(b)
            if ra != rb:
                self.parent[max(ra, rb)] = min(ra, rb)

    def close(self, open_ids: ArrayLike) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (geometries, classes) of the dissolved groups that cannot grow any more."""
        open_roots = {self.find(u) for u in np.unique(np.asarray(open_ids)).tolist() if u >= 0}
        members: defaultdict[int, list[int]] = defaultdict(list)
        for uid in list(self.pieces):
            root = self.find(uid)
            if root not in open_roots:
                members[root].append(uid)
        done = [shapely.union_all([self.pieces[u][0] for u in uids]) for uids in members.values()]
        values = [self.pieces[uids[0]][1] for uids in members.values()]
        for uids in members.values():
            for uid in uids:
                del self.pieces[uid], self.parent[uid]
        if done:
            yield np.array(done, dtype=object), np.array(values)


def _as_2d(array: ArrayLike) -> np.ndarray:
    data = np.asarray(array)
    data = data[0] if data.ndim == 3 else data
    return data if data.dtype.name in _SHAPES_DTYPES else data.astype("int32")


def pixel_shapes(array: np.ndarray, mask: np.ndarray | None, col: int, row: int,
                 connectivity: int = 4) -> list[tuple[dict[str, Any], float]]:
    """rasterio shapes in raster pixel coordinates offset by (col, row), without the
    not-georeferenced warning GDAL gives for the identity transform of the origin block."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return list(rasterio.features.shapes(array, mask=mask, connectivity=connectivity,
                                             transform=Affine.translation(col, row)))


def _polygonize(block: np.ndarray, valid: np.ndarray,
                window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Pieces of one block in raster pixel coordinates (x = column, y = row)."""
    pairs = pixel_shapes(block, valid, window.col_off, window.row_off)
    geoms = np.array([shape(g) for g, _ in pairs] + [None], dtype=object)[:-1]
    return geoms, np.array([v for _, v in pairs], dtype=block.dtype)


def _edge_ids(block: np.ndarray, valid: np.ndarray, geoms: np.ndarray, uids: np.ndarray,
              window: Window, sides: dict[str, bool]) -> dict[str, Edge]:
    """Per internal side: the class and the piece id (-1 where skipped) of every edge pixel."""
    rows, cols = block.shape
    lines = {"top": (0, slice(None)), "bottom": (rows - 1, slice(None)),
             "left": (slice(None), 0), "right": (slice(None), cols - 1)}
    tree = shapely.STRtree(geoms)
    result: dict[str, Edge] = {}
    for side, wanted in sides.items():
        if not wanted:
            continue
        r, c = lines[side]
        values, ok = block[r, c], valid[r, c]
        start = np.flatnonzero(np.r_[True, (values[1:] != values[:-1]) | (ok[1:] != ok[:-1])])
        lengths = np.diff(np.r_[start, len(values)])
        pr = np.full(len(start), r, float) if isinstance(r, int) else start.astype(float)
        pc = np.full(len(start), c, float) if isinstance(c, int) else start.astype(float)
        run_ids = np.full(len(start), -1)
        inside = ok[start]
        points = shapely.points(pc[inside] + window.col_off + 0.5,
                                pr[inside] + window.row_off + 0.5)
        hit_point, hit_geom = tree.query(points, predicate="within")
        found = np.full(len(points), -1)
        found[hit_point] = uids[hit_geom]
        run_ids[inside] = found
        result[side] = (values, np.repeat(run_ids, lengths))
    return result


def _concat(parts: Sequence[Edge]) -> Edge:
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def to_map(geoms: ArrayLike, transform: Affine) -> np.ndarray:
    """Geometries in pixel coordinates (x = column, y = row) moved to map coordinates."""
    t = transform
    return shapely.transform(np.asarray(geoms, dtype=object),
                             lambda xy: xy @ np.array([[t.a, t.d], [t.b, t.e]]) + (t.c, t.f))


def _finish(geoms: np.ndarray, values: ArrayLike, transform: Affine, min_area: float,
            simplify: float) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates, then the area filter, simplification and polygon validity."""
    geoms = to_map(geoms, transform)
    keep = shapely.area(geoms) >= min_area
    geoms, classes = geoms[keep], np.asarray(values)[keep]
    if simplify:
        geoms = shapely.simplify(geoms, simplify, preserve_topology=True)
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms[bad] = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
    parts, index = shapely.get_parts(geoms, return_index=True)
    polygon = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    return parts[polygon], classes[index[polygon]].astype("int32")

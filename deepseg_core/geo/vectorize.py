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

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from shapely.geometry import shape

from ..contracts.raster import RasterInfo, Window
from .gpkg import GpkgAppender, class_name

_SHAPES_DTYPES = {"int8", "int16", "int32", "uint8", "uint16", "float32", "float64"}
COLUMNS = {"class_id": "int32", "class_name": object, "area": "float64"}


def vectorize_raster(read_block, info: RasterInfo, out_path, class_names=None, *, skip=(0,),
                     min_area: float = 0.0, simplify: float = 0.0, block_size: int = 1024,
                     layer: str = "classes", chunk: int = 50_000) -> dict:
    """Polygonize a class raster block by block into a GeoPackage; per-class counts and areas."""
    # read_block(window) -> (rows, cols) or (1, rows, cols); skip: values not polygonized
    # (nodata is added); min_area in map units² before simplify; simplify: tolerance in map
    # units (shapely, topology preserved); class_names: a sequence indexed by value or a dict
    names = class_names if class_names is not None else (info.class_names or ())
    skip = set(skip) | ({info.nodata} if info.nodata is not None else set())
    out = GpkgAppender(out_path, layer, info.crs, COLUMNS, "Polygon", chunk)
    summary = {"polygons": defaultdict(int), "area": defaultdict(float)}

    def emit(geoms, values):
        geoms, values = _finish(geoms, values, info.transform, min_area, simplify)
        areas = shapely.area(geoms)
        out.add(geoms, class_id=values, area=areas,
                class_name=[class_name(names, v) for v in values])
        for value, area in zip(values.tolist(), areas.tolist()):
            summary["polygons"][value] += 1
            summary["area"][value] += area

    groups = _EdgeGroups()
    above = None  # (values, piece ids) of the last pixel row of the previous row of blocks
    for r0 in range(0, info.height, block_size):
        h = min(block_size, info.height - r0)
        top, bottom, left = [], [], None
        for c0 in range(0, info.width, block_size):
            window = Window(r0, c0, h, min(block_size, info.width - c0))
            block = _as_2d(read_block(window))
            valid = ~np.isin(block, list(skip))
            geoms, values = _polygonize(block, valid, window)
            uids = groups.new_ids(len(geoms))
            sides = {"top": r0 > 0, "bottom": r0 + h < info.height,
                     "left": c0 > 0, "right": c0 + window.width < info.width}
            edges = _edge_ids(block, valid, geoms, uids, window, sides)
            touching = np.isin(uids, np.concatenate([ids for _, ids in edges.values()] + [[]]))
            emit(geoms[~touching], values[~touching])
            groups.add(uids[touching], geoms[touching], values[touching])
            if "left" in edges:
                groups.link(*left, *edges["left"])
            left = edges.get("right")
            top.append(edges.get("top"))
            bottom.append(edges.get("bottom"))
        if above is not None:
            groups.link(*above, *_concat(top))
        above = _concat(bottom) if r0 + h < info.height else None
        for geoms, values in groups.close(open_ids=above[1] if above else ()):
            emit(geoms, values)
    out.close()
    return {"polygons": dict(summary["polygons"]), "area": dict(summary["area"]),
            "path": str(out_path), "layer": layer}


class _EdgeGroups:
    """Pieces touching internal block edges, grouped by a union-find over shared edges."""

    def __init__(self):
        self.next_id = 0
        self.parent: dict[int, int] = {}
        self.pieces: dict[int, tuple] = {}

    def new_ids(self, n):
        self.next_id += n
        return np.arange(self.next_id - n, self.next_id)

    def add(self, uids, geoms, values):
        for uid, geom, value in zip(uids.tolist(), geoms, values.tolist()):
            self.parent[uid] = uid
            self.pieces[uid] = (geom, value)

    def find(self, uid):
        root = uid
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[uid] != root:
            self.parent[uid], uid = root, self.parent[uid]
        return root

    def link(self, values_a, ids_a, values_b, ids_b):
        """Join pieces facing each other across an edge with the same class, pixel by pixel."""
        same = (ids_a >= 0) & (ids_b >= 0) & (values_a == values_b)
        for a, b in np.unique(np.stack([ids_a[same], ids_b[same]], axis=1), axis=0).tolist():
            ra, rb = self.find(a), self.find(b)
            if ra != rb:
                self.parent[max(ra, rb)] = min(ra, rb)

    def close(self, open_ids):
        """Yield (geometries, classes) of the dissolved groups that cannot grow any more."""
        open_roots = {self.find(u) for u in np.unique(np.asarray(open_ids)).tolist() if u >= 0}
        members = defaultdict(list)
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


def _as_2d(array):
    array = np.asarray(array)
    array = array[0] if array.ndim == 3 else array
    return array if array.dtype.name in _SHAPES_DTYPES else array.astype("int32")


def pixel_shapes(array, mask, col: int, row: int, connectivity: int = 4) -> list:
    """rasterio shapes in raster pixel coordinates offset by (col, row), without the
    not-georeferenced warning GDAL gives for the identity transform of the origin block."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return list(rasterio.features.shapes(array, mask=mask, connectivity=connectivity,
                                             transform=Affine.translation(col, row)))


def _polygonize(block, valid, window):
    """Pieces of one block in raster pixel coordinates (x = column, y = row)."""
    pairs = pixel_shapes(block, valid, window.col_off, window.row_off)
    geoms = np.array([shape(g) for g, _ in pairs] + [None], dtype=object)[:-1]
    return geoms, np.array([v for _, v in pairs], dtype=block.dtype)


def _edge_ids(block, valid, geoms, uids, window, sides):
    """Per internal side: the class and the piece id (-1 where skipped) of every edge pixel."""
    rows, cols = block.shape
    lines = {"top": (0, slice(None)), "bottom": (rows - 1, slice(None)),
             "left": (slice(None), 0), "right": (slice(None), cols - 1)}
    tree, result = shapely.STRtree(geoms), {}
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


def _concat(parts):
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def to_map(geoms, transform: Affine) -> np.ndarray:
    """Geometries in pixel coordinates (x = column, y = row) moved to map coordinates."""
    t = transform
    return shapely.transform(np.asarray(geoms, dtype=object),
                             lambda xy: xy @ np.array([[t.a, t.d], [t.b, t.e]]) + (t.c, t.f))


def _finish(geoms, values, transform, min_area, simplify):
    """Map coordinates, then the area filter, simplification and polygon validity."""
    geoms = to_map(geoms, transform)
    keep = shapely.area(geoms) >= min_area
    geoms, values = geoms[keep], np.asarray(values)[keep]
    if simplify:
        geoms = shapely.simplify(geoms, simplify, preserve_topology=True)
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms[bad] = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
    parts, index = shapely.get_parts(geoms, return_index=True)
    polygon = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    return parts[polygon], values[index[polygon]].astype("int32")

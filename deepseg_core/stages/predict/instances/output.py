"""Where stitched instances go: GeoPackage polygons plus an instance-id raster, or, for a
shard, a GeoPackage of candidates that the merge step finishes (DESIGN §4)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyogrio
import rasterio.features
import shapely

from ....contracts.raster import RasterInfo, Window
from ....errors import DeepSegError
from ....geo.gpkg import GpkgAppender, class_name
from .duplicates import Columns, concat_columns, take

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

#: ``write_block(array (1, rows, cols), window)``: where the id raster's blocks go
WriteBlock = Callable[[np.ndarray, Window], None]
#: ``on_commit(stripe, tiles)``: the candidates of the first ``tiles`` tiles are on disk
OnCommit = Callable[[int, int], None]
ClassNames = Sequence[str] | Mapping[int, str]

INSTANCE_COLUMNS: dict[str, DTypeLike] = {
    "instance_id": "int64", "class_id": "int32", "class_name": object, "score": "float64",
    "area": "float64"}
CANDIDATE_COLUMNS = {"stripe": "int64", "class_id": "int32", "score": "float64",
                     "row0": "int64", "col0": "int64", "row1": "int64", "col1": "int64"}


class InstanceOutput:
    """Numbers kept instances 1, 2, ... in the order they are final, appends them to the
    GeoPackage and burns the id raster in blocks of ``block_size`` as rows become final.

    ``write_block(array, window)`` receives ``(1, rows, cols)`` uint32 arrays (0 = nodata), in
    row-major order, so a RasterSink's ``write`` fits. With ``write_empty=False`` blocks
    without instances are skipped (for sinks that start as nodata).
    """

    def __init__(self, info: RasterInfo, out_path: Path, class_names: ClassNames = (),
                 write_block: WriteBlock | None = None, *, layer: str = "instances",
                 block_size: int = 1024, write_empty: bool = True,
                 geometry_type: str = "Polygon", chunk: int = 50_000) -> None:
        self.info, self.names = info, class_names or ()
        self.gpkg = GpkgAppender(out_path, layer, info.crs, INSTANCE_COLUMNS, geometry_type,
                                 chunk)
        self.write_block, self.block_size, self.write_empty = write_block, block_size, write_empty
        self.next_id, self.burned_to = 1, 0
        self.pending: Columns = {}  # kept instances whose blocks are not burned yet
        self.per_class: Counter = Counter()

    def add(self, kept: Columns) -> None:
        """Number and write instances that are final."""
        if not kept or not len(kept["geometry"]):
            return
        n = len(kept["geometry"])
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        if self.next_id > np.iinfo(np.uint32).max:
            raise DeepSegError("more instances than a uint32 instance-id raster can number")
        classes = kept["class_id"].astype(int)
        self.gpkg.add(kept["geometry"], instance_id=ids, class_id=classes,
                      class_name=[class_name(self.names, c) for c in classes.tolist()],
                      score=kept["score"], area=shapely.area(kept["geometry"]))
        self.per_class.update(classes.tolist())
        if self.write_block is not None:
            self.pending = concat_columns([self.pending, {**kept, "id": ids,
                                                          "geojson": _geojson(kept["geometry"])}])

    def burn_until(self, final_row: float) -> None:
        """Burn every block row that lies wholly above ``final_row``."""
        write = self.write_block
        if write is None:
            return
        size = self.block_size
        while self.burned_to < self.info.height and (
                min(self.burned_to + size, self.info.height) <= final_row):
            self._burn_rows(write, self.burned_to, min(size, self.info.height - self.burned_to))
            self.burned_to += size

    def _burn_rows(self, write: WriteBlock, row0: int, height: int) -> None:
        extent = self.pending["extent"] if self.pending else np.zeros((0, 4), int)
        inside = (extent[:, 0] < row0 + height) & (extent[:, 2] > row0)
        band = take(self.pending, inside)
        if band:
            band = take(band, np.argsort(band["score"], kind="stable"))  # best burned last
        for col0 in range(0, self.info.width, self.block_size):
            window = Window(row0, col0, height, min(self.block_size, self.info.width - col0))
            here = (band["extent"][:, 1] < col0 + window.width) & (
                band["extent"][:, 3] > col0) if band else np.zeros(0, bool)
            if not here.any() and not self.write_empty:
                continue
            array = np.zeros((height, window.width), np.uint32)
            if here.any():
                shapes = zip(band["geojson"][here], band["id"][here].tolist())
                rasterio.features.rasterize(shapes, out=array,
                                            transform=self.info.window_transform(window))
            write(array[None], window)
        if self.pending:
            self.pending = take(self.pending, self.pending["extent"][:, 2] > row0 + height)

    def close(self) -> dict[str, Any]:
        """Burn what is left and close the GeoPackage; a summary."""
        self.burn_until(float("inf"))
        return {"instances": self.gpkg.close(), "per_class": dict(self.per_class),
                "path": str(self.gpkg.path), "layer": self.gpkg.layer}


class CandidateOutput:
    """A shard's owned detections, undecided, for :func:`shards.merge_shards`.

    With ``on_commit(stripe, tiles)``, every finished stripe is written to disk before
    ``on_commit`` records that the first ``tiles`` tiles are safe (an interrupted shard then
    resumes from there); without it candidates are written in chunks.
    """

    def __init__(self, info: RasterInfo, out_path: Path, *, layer: str = "candidates",
                 chunk: int = 50_000, on_commit: OnCommit | None = None) -> None:
        self.gpkg = GpkgAppender(out_path, layer, info.crs, CANDIDATE_COLUMNS, "Polygon", chunk)
        self.on_commit = on_commit

    def add(self, stripe: int, batch: Columns) -> None:
        """Append one stripe's candidates."""
        if batch and len(batch["geometry"]):
            e = batch["extent"]
            self.gpkg.add(batch["geometry"], stripe=np.full(len(e), stripe),
                          class_id=batch["class_id"], score=batch["score"],
                          row0=e[:, 0], col0=e[:, 1], row1=e[:, 2], col1=e[:, 3])

    def commit(self, stripe: int, tiles: int) -> None:
        """Stripes up to ``stripe`` (the first ``tiles`` tiles) are complete."""
        if self.on_commit is not None:
            self.gpkg.flush()
            self.gpkg.sync()  # durable before the record that names it
            self.on_commit(stripe, tiles)

    def close(self) -> dict[str, Any]:
        """Close the GeoPackage; a summary."""
        return {"candidates": self.gpkg.close(), "path": str(self.gpkg.path),
                "layer": self.gpkg.layer}


def _geojson(geoms: np.ndarray) -> np.ndarray:
    """GeoJSON-like dicts, built in bulk: rasterize reads them much faster than shapely's."""
    kind, coords, offsets = shapely.to_ragged_array(geoms)
    items = coords.tolist()
    for level in offsets:  # rings, then polygons (then multipolygons)
        bounds = level.tolist()
        items = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    name = "MultiPolygon" if kind == shapely.GeometryType.MULTIPOLYGON else "Polygon"
    out = np.empty(len(items), dtype=object)
    out[:] = [{"type": name, "coordinates": item} for item in items]
    return out


def read_candidates(path: Path, layer: str = "candidates",
                    chunk: int = 50_000) -> Iterator[tuple[int, Columns]]:
    """Yield ``(stripe, columns)`` from a shard's candidates in file order (stripe ascending)."""
    total = pyogrio.read_info(path, layer=layer)["features"]
    last = None
    for start in range(0, total, chunk):
        frame = pyogrio.read_dataframe(path, layer=layer,
                                       where=f"fid > {start} AND fid <= {start + chunk}")
        stripes = frame["stripe"].to_numpy()
        if len(stripes) and (np.any(np.diff(stripes) < 0) or (last is not None
                                                               and last > stripes[0])):
            raise DeepSegError(f"{path}: candidates are not in stripe order; "
                               "was the shard written by InstanceStitcher(shard=True)?")
        columns = {"geometry": frame.geometry.to_numpy(dtype=object),
                   "class_id": frame["class_id"].to_numpy("int32"),
                   "score": frame["score"].to_numpy("float64"),
                   "extent": frame[["row0", "col0", "row1", "col1"]].to_numpy("int64")}
        for stripe in np.unique(stripes).tolist():
            yield stripe, take(columns, stripes == stripe)
            last = stripe

"""A GeoPackage layer written in chunks, so vector outputs never sit whole in memory."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pyogrio

from ..errors import DeepSegError, io_error
from ..io.atomic import fsync_dir, fsync_file, full_disk_hint

if TYPE_CHECKING:
    from _typeshed import StrPath
    from numpy.typing import ArrayLike, DTypeLike


class GpkgAppender:
    """Collects features column by column and appends them to a GeoPackage layer in chunks.

    The first flush creates (or replaces) ``layer``; later flushes append. ``close()``
    writes what is left and creates the layer empty when no feature came at all.
    """

    def __init__(self, path: StrPath, layer: str, crs: str | None,
                 columns: Mapping[str, DTypeLike], geometry_type: str = "Polygon",
                 chunk: int = 50_000) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".gpkg":
            raise ValueError(f"{self.path}: vector outputs are GeoPackages (.gpkg)")
        self.layer = layer
        self.crs = crs
        self.columns = dict(columns)  # name -> numpy dtype
        self.geometry_type = geometry_type
        self.chunk = chunk
        self.written = 0
        self._created = False
        self._synced = False
        self._parts: list[tuple[np.ndarray, dict[str, ArrayLike]]] = []
        self._buffered = 0

    def add(self, geometries: ArrayLike, **values: ArrayLike) -> None:
        """Queue features: an array of shapely geometries plus one array per column."""
        geoms = np.asarray(geometries, dtype=object)
        if not len(geoms):
            return
        if set(values) != set(self.columns):
            raise ValueError(f"columns {sorted(values)} differ from {sorted(self.columns)}")
        self._parts.append((geoms, values))
        self._buffered += len(geoms)
        if self._buffered >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Write the queued features."""
        if not self._parts and self._created:
            return
        parts = self._parts or [(np.array([], dtype=object),
                                 {name: np.array([]) for name in self.columns})]
        data = {name: np.concatenate([np.asarray(v[name]) for _, v in parts]).astype(dtype)
                for name, dtype in self.columns.items()}
        series = gpd.GeoSeries(np.concatenate([g for g, _ in parts]), crs=self.crs)
        frame = gpd.GeoDataFrame(data, geometry=series)
        with warnings.catch_warnings():  # crs None means unknown: no need to warn each chunk
            warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
            try:
                pyogrio.write_dataframe(frame, self.path, layer=self.layer, driver="GPKG",
                                        append=self._created, geometry_type=self.geometry_type,
                                        promote_to_multi=self.geometry_type.startswith("Multi"))
            except Exception as exc:  # pyogrio's errors of GDAL/SQLite: a full disk, EIO
                raise DeepSegError(f"{self.path}: cannot write layer {self.layer!r} "
                                   f"({' '.join(str(exc).split())})"
                                   f"{full_disk_hint(self.path.parent)}") from None
        self._created = True
        self.written += len(frame)
        self._parts, self._buffered = [], 0

    def sync(self) -> None:
        """Make what is written durable: the file's data, and the folder's entry once (the
        first flush created the file; SQLite's own syncs leave the entry to the folder)."""
        try:
            fsync_file(self.path)
            if not self._synced:
                fsync_dir(self.path.parent)
                self._synced = True
        except OSError as exc:
            raise io_error(self.path, exc, f"cannot write layer {self.layer!r}") from None

    def close(self) -> int:
        """Write the rest; the number of features written in all."""
        self.flush()
        return self.written


def class_name(names: Sequence[str] | Mapping[int, str], value: int) -> str:
    """The name of a class id: ``names`` is a sequence indexed by id or a mapping."""
    if isinstance(names, dict):
        return str(names.get(value, value))
    return str(names[value]) if 0 <= value < len(names) else str(value)

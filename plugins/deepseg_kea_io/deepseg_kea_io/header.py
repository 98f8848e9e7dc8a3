"""Parsing a KEA file's header, bands and GCPs into plain Python values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import h5py
import numpy as np
from affine import Affine

from deepseg_core.errors import DeepSegError

from .layout import (
    DTYPE_BY_CODE,
    SUPPORTED_VERSIONS,
    dtype_of_code,
    group_children_sorted,
    read_str,
    read_values,
    text,
)


@dataclass(frozen=True)
class KeaBand:
    """What a KEA band says about itself (1-based ``index``)."""

    index: int
    dtype: np.dtype
    nodata: float | None
    description: str
    thematic: bool
    usage: int  # LAYER_USAGE: GDAL colour interpretation code (0 generic)
    block_size: int
    overviews: tuple[tuple[int, int], ...]  # (rows, cols) of OVERVIEW1, OVERVIEW2, ...
    has_mask: bool
    metadata: dict[str, str] = field(default_factory=dict)


class Gcp(NamedTuple):
    """A ground control point as KEA (and GDAL) stores it."""

    id: str
    info: str
    pixel: float
    line: float
    x: float
    y: float
    z: float


@dataclass(frozen=True)
class KeaHeader:
    """The global header: size, band count, geotransform and projection."""

    width: int
    height: int
    count: int
    transform: Affine
    crs: str | None
    version: str


def read_header(f: h5py.File, path) -> KeaHeader:
    """``/HEADER`` of an open file; raises DeepSegError when it is not a KEA header."""
    header = f.get("HEADER")
    filetype = read_str(header, "FILETYPE") if isinstance(header, h5py.Group) else None
    if filetype is None:
        raise DeepSegError(f"{path}: an HDF5 file but not a KEA image: /HEADER/FILETYPE is "
                           "missing (expected 'KEA')")
    if filetype != "KEA":
        raise DeepSegError(f"{path}: an HDF5 file but not a KEA image: /HEADER/FILETYPE is "
                           f"{filetype!r} (expected 'KEA')")
    version = read_str(header, "VERSION", "")
    if version not in SUPPORTED_VERSIONS:
        raise DeepSegError(f"{path}: unsupported KEA version {version!r} (expected one of "
                           f"{', '.join(SUPPORTED_VERSIONS)})")
    size, count = read_values(header, "SIZE", np.uint64), read_values(header, "NUMBANDS", "u4")
    if size is None or len(size) != 2 or count is None or len(count) != 1:
        raise DeepSegError(f"{path}: damaged KEA header: /HEADER/SIZE (x, y) and "
                           "/HEADER/NUMBANDS are required")
    tl = _pair(header, "TL", (0.0, 0.0))
    res = _pair(header, "RES", (1.0, -1.0))
    rot = _pair(header, "ROT", (0.0, 0.0))
    wkt = read_str(header, "WKT", "") or None
    transform = Affine.from_gdal(tl[0], res[0], rot[0], tl[1], rot[1], res[1])
    return KeaHeader(int(size[0]), int(size[1]), int(count[0]), transform, wkt, version)


def _pair(group: h5py.Group, name: str, default) -> tuple[float, float]:
    values = read_values(group, name, np.float64)
    return tuple(float(v) for v in values[:2]) if values is not None and len(values) >= 2 \
        else default


def read_band(f: h5py.File, index: int, path) -> KeaBand:
    """``/BAND<index>`` of an open file; raises DeepSegError for a missing or unknown band."""
    group = f.get(f"BAND{index}")
    if not isinstance(group, h5py.Group) or "DATA" not in group:
        raise DeepSegError(f"{path}: damaged KEA file: /BAND{index}/DATA is missing")
    code = read_values(group, "DATATYPE", "u4")
    if code is None or len(code) != 1:
        raise DeepSegError(f"{path}: damaged KEA file: /BAND{index}/DATATYPE is missing")
    dtype = dtype_of_code(code[0])
    if dtype is None:
        raise DeepSegError(f"{path}: band {index} has unsupported KEA datatype code {code[0]} "
                           f"(expected {min(DTYPE_BY_CODE)}..{max(DTYPE_BY_CODE)}: int8..uint64, "
                           "float32, float64)")
    data = group["DATA"]
    block = int(data.attrs.get("BLOCK_SIZE", data.chunks[0] if data.chunks else 0))
    ovr = group.get("OVERVIEWS")
    overviews = tuple(tuple(int(n) for n in ovr[name].shape)
                      for name in group_children_sorted(ovr, "OVERVIEW")) \
        if isinstance(ovr, h5py.Group) else ()
    layer = read_values(group, "LAYER_TYPE", "u4")
    usage = read_values(group, "LAYER_USAGE", "u4")
    thematic = layer is not None and len(layer) > 0 and int(layer[0]) == 1
    metadata = read_metadata(group.get("METADATA"))
    metadata["LAYER_TYPE"] = "thematic" if thematic else "athematic"
    return KeaBand(index=index, dtype=dtype, nodata=_nodata(group, dtype),
                   description=read_str(group, "DESCRIPTION", "") or "", thematic=thematic,
                   usage=int(usage[0]) if usage is not None and len(usage) else 0,
                   block_size=block, overviews=overviews, has_mask="MASK" in group,
                   metadata=metadata)


def _nodata(group: h5py.Group, dtype: np.dtype) -> float | None:
    """NO_DATA_VAL when defined (a missing @NO_DATA_DEFINED means defined, as in kealib 1.x)."""
    ds = group.get("NO_DATA_VAL")
    if not isinstance(ds, h5py.Dataset) or ds.size < 1:
        return None
    if int(np.asarray(ds.attrs.get("NO_DATA_DEFINED", 1)).reshape(-1)[0]) == 0:
        return None
    value = np.asarray(ds[()], dtype=dtype).reshape(-1)[0]
    return float(value) if dtype.kind == "f" else int(value)


def read_metadata(group) -> dict[str, str]:
    """A METADATA group: one string dataset per key."""
    if not isinstance(group, h5py.Group):
        return {}
    return {name: read_str(group, name, "") for name in group
            if isinstance(group[name], h5py.Dataset)}


def read_gcps(f: h5py.File) -> tuple[list[Gcp], str | None]:
    """The GCPs and their projection WKT (``([], None)`` when the file has none)."""
    group = f.get("GCPS")
    if not isinstance(group, h5py.Group) or "GCPS" not in group:
        return [], None
    count = read_values(group, "NUM_GCPS", "u4")
    records = group["GCPS"][()]
    records = records[:int(count[0])] if count is not None and len(count) else records
    gcps = [Gcp(text(r["PSZ_ID"]), text(r["PSZ_INFO"]), float(r["DF_PIXEL"]),
                float(r["DF_LINE"]), float(r["DF_X"]), float(r["DF_Y"]), float(r["DF_Z"]))
            for r in records]
    return gcps, read_str(group, "PROJ", "") or None

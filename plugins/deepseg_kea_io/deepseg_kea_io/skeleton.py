"""Creating a new KEA file's structure: header, empty bands, metadata and GCPs."""

from __future__ import annotations

import h5py
import numpy as np

from deepseg_core.contracts.raster import RasterInfo

from . import rat
from .layout import (
    CODE_BY_DTYPE,
    GENERATOR,
    PALETTE_USAGE,
    STRING,
    WRITE_VERSION,
    create_image,
    filters,
    to_bytes,
    write_str,
    write_values,
)

GCP_TYPE = np.dtype({"names": ["PSZ_ID", "PSZ_INFO", "DF_PIXEL", "DF_LINE", "DF_X", "DF_Y",
                               "DF_Z"],
                     "formats": [STRING, STRING] + ["<f8"] * 5,
                     "offsets": [0, 8, 16, 24, 32, 40, 48], "itemsize": 56})


def create_structure(f: h5py.File, info: RasterInfo, s: dict) -> None:
    """Header, dataset metadata, GCPs and every (empty) band of a new file."""
    header = f.create_group("HEADER")
    write_str(header, "FILETYPE", "KEA")
    write_str(header, "GENERATOR", GENERATOR)
    write_str(header, "VERSION", WRITE_VERSION)
    write_values(header, "NUMBANDS", [info.count], "<u2")
    write_values(header, "SIZE", [info.width, info.height], "<u8")
    gt = info.transform.to_gdal()
    write_values(header, "TL", [gt[0], gt[3]], "<f8")
    write_values(header, "RES", [gt[1], gt[5]], "<f8")
    write_values(header, "ROT", [gt[2], gt[4]], "<f8")
    write_str(header, "WKT", s["wkt"])
    write_metadata(f.create_group("METADATA"), info.metadata)
    gcps = f.create_group("GCPS")
    if s["gcps"] is not None:
        write_gcps(gcps, *s["gcps"])
    for index in range(1, info.count + 1):
        add_band(f, index, info, s)


def add_band(f: h5py.File, index: int, info: RasterInfo, s: dict) -> None:
    """``/BAND<index>`` with an empty DATA, its type, layer type, description and nodata."""
    group = f.create_group(f"BAND{index}")
    dtype = np.dtype(info.dtype)
    create_image(group, "DATA", (info.height, info.width), dtype, s["block"], s["deflate"])
    write_values(group, "DATATYPE", [CODE_BY_DTYPE[dtype.name]], "<u2")
    write_values(group, "LAYER_TYPE", [1 if s["thematic"] else 0], "u1")
    # GDAL reads LAYER_USAGE as the colour interpretation: 2 = Palette (its own palette files
    # use it), so gdalinfo shows the colour table and gdal_translate keeps the palette
    palette = index == 1 and bool(info.colormap)
    write_values(group, "LAYER_USAGE", [PALETTE_USAGE if palette else 0], "u1")
    given = info.descriptions[index - 1] if index <= len(info.descriptions) else None
    write_str(group, "DESCRIPTION", given or f"Band {index}")
    if info.nodata is not None:
        nodata = write_values(group, "NO_DATA_VAL", [info.nodata], dtype.newbyteorder("<"))
        nodata.attrs.create("NO_DATA_DEFINED", 1, dtype="<i1")
    group.create_group("METADATA")
    group.create_group("OVERVIEWS")
    rat.write_columns(group.create_group("ATT"), [], s["att_block_size"], s["deflate"])


def write_metadata(group: h5py.Group, items: dict) -> None:
    """One string dataset per metadata key."""
    for key, value in (items or {}).items():
        write_str(group, str(key), "" if value is None else str(value))


def write_gcps(group: h5py.Group, gcps, projection) -> None:
    """``/GCPS/GCPS`` (when any), ``NUM_GCPS`` and ``PROJ``."""
    records = np.array([(to_bytes(g[0]), to_bytes(g[1]), *(float(v) for v in g[2:7]))
                        for g in gcps], dtype=GCP_TYPE)
    if len(records):
        group.create_dataset("GCPS", data=records, chunks=(len(records),), maxshape=(None,),
                             **filters(1))
    write_values(group, "NUM_GCPS", [len(records)], "<u4")
    write_str(group, "PROJ", projection or "")

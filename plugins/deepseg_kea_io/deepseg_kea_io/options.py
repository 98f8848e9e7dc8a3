"""Validation of the KEA writer's options and of the RasterInfo it is asked to write.

Options of ``create(path, info, **options)``:

- ``block_size`` (alias ``blocksize``): square chunk size, default 256 (GDAL IMAGEBLOCKSIZE);
  the chunks are ``min(block_size, width, height)`` square;
- ``deflate``: deflate level 0..9, default 1 (GDAL DEFLATE);
- ``att_block_size``: rows per chunk of the attribute table, default 1000 (GDAL ATTBLOCKSIZE);
- ``overviews``: None, 'auto' (halving until one block) or factors such as [2, 4, 8];
- ``resampling`` of overviews: 'nearest' (default for thematic rasters) or 'average';
- ``thematic``: True/False overrides ``info.thematic`` (GDAL THEMATIC) for every band;
- ``statistics``: compute band statistics (and histograms of thematic bands), default True;
- ``attribute_table``: extra band-1 columns ``{name: values}``; a name equal to a generated
  column (Histogram, Red, Green, Blue, Alpha, ClassName) replaces it;
- ``gcps``: ``(list of (id, info, pixel, line, x, y, z), projection WKT)``.
"""

from __future__ import annotations

import math

import numpy as np

from deepseg_core.contracts.raster import RasterInfo
from deepseg_core.errors import DeepSegError

from .layout import CODE_BY_DTYPE, DEFAULT_ATT_BLOCK, DEFAULT_BLOCK

DEFAULTS = dict(block_size=DEFAULT_BLOCK, deflate=1, att_block_size=DEFAULT_ATT_BLOCK,
                overviews=None, resampling=None, thematic=None, statistics=True,
                attribute_table=None, gcps=None)
ALIASES = {"blocksize": "block_size", "imageblocksize": "block_size",
           "attblocksize": "att_block_size"}


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def auto_factors(width: int, height: int, block: int) -> list[int]:
    """Overview factors 2, 4, ... until the coarsest level fits in one block."""
    factors, factor = [], 2
    while max(width, height) / (factor // 2) > block and min(width, height) // factor >= 1:
        factors.append(factor)
        factor *= 2
    return factors


def settings(path, info: RasterInfo, options: dict) -> dict:
    """Validated options (defaults filled in); raises DeepSegError naming the bad one."""
    given = {ALIASES.get(k.lower(), k.lower()): v for k, v in options.items()}
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise DeepSegError(f"{path}: unknown KEA writer option {unknown[0]!r} (accepted: "
                           f"{', '.join(DEFAULTS)})")
    s = {**DEFAULTS, **given}

    def bad(name, expected):
        return DeepSegError(f"{path}: KEA writer option {name}={s[name]!r}: expected {expected}")

    for name, low, high in (("block_size", 1, 65535), ("deflate", 0, 9),
                            ("att_block_size", 1, 1 << 31)):
        if not _is_int(s[name]) or not low <= s[name] <= high:
            raise bad(name, f"an integer in {low}..{high}")
    s["block"] = max(1, min(int(s["block_size"]), info.width, info.height))
    ovr = s["overviews"]
    if ovr in (None, False) or (isinstance(ovr, str) and ovr.lower() == "none"):
        s["overviews"] = []
    elif isinstance(ovr, str) and ovr.lower() == "auto":
        s["overviews"] = auto_factors(info.width, info.height, s["block"])
    elif not isinstance(ovr, (list, tuple)) or not all(_is_int(f) and f >= 2 for f in ovr):
        raise bad("overviews", "none, 'auto' or a list of integer factors >= 2")
    else:
        too_big = [f for f in ovr if info.width // f < 1 or info.height // f < 1]
        if too_big:
            raise bad("overviews", f"factors that leave at least one pixel (the raster is "
                                   f"{info.height} x {info.width})")
        s["overviews"] = sorted({int(f) for f in ovr})
    if s["thematic"] is not None and not isinstance(s["thematic"], bool):
        raise bad("thematic", "true or false")
    if s["thematic"] is None:
        s["thematic"] = bool(info.thematic or info.colormap or info.class_names)
    s["resampling"] = s["resampling"] or ("nearest" if s["thematic"] else "average")
    if s["resampling"] not in ("nearest", "average"):
        raise bad("resampling", "'nearest' or 'average'")
    if not isinstance(s["statistics"], bool):
        raise bad("statistics", "true or false")
    if s["attribute_table"] is not None and not isinstance(s["attribute_table"], dict):
        raise bad("attribute_table", "a mapping of column name to values")
    if s["gcps"] is not None and not (isinstance(s["gcps"], (list, tuple)) and
                                      len(s["gcps"]) == 2):
        raise bad("gcps", "a pair (list of (id, info, pixel, line, x, y, z), projection)")
    check_info(path, info)
    s["wkt"] = crs_wkt(path, info.crs)
    return s


def crs_wkt(path, crs) -> str:
    """The projection as WKT ("" for none); other CRS strings are converted by rasterio."""
    if not crs:
        return ""
    text = str(crs)
    if "[" in text:
        return text
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(text).to_wkt()
    except CRSError as exc:
        raise DeepSegError(f"{path}: crs {text!r} is not a coordinate reference system "
                           f"rasterio understands ({exc})") from exc


def check_info(path, info: RasterInfo) -> None:
    """Reject what a KEA file cannot hold: dtype, nodata, colour table, metadata keys."""
    dtype = np.dtype(info.dtype).name
    if dtype not in CODE_BY_DTYPE:
        raise DeepSegError(f"{path}: KEA cannot store dtype {dtype} (supported: "
                           f"{', '.join(CODE_BY_DTYPE)})")
    if info.width < 1 or info.height < 1 or info.count < 1:
        raise DeepSegError(f"{path}: a KEA raster needs at least one band, row and column "
                           f"(got {info.count} x {info.height} x {info.width})")
    if info.nodata is not None and not representable(info.nodata, dtype):
        raise DeepSegError(f"{path}: nodata {info.nodata!r} does not fit dtype {dtype}")
    for value, colour in (info.colormap or {}).items():
        if not _is_int(value) or value < 0 or len(colour) not in (3, 4) or \
                not all(0 <= int(c) <= 255 for c in colour):
            raise DeepSegError(f"{path}: colour table entry {value!r}: {colour!r}: expected a "
                               "value >= 0 and 3 or 4 integers in 0..255")
    for key in info.metadata or {}:
        if not str(key) or "/" in str(key) or str(key) == ".":
            raise DeepSegError(f"{path}: metadata key {key!r} cannot be stored in KEA "
                               "(expected a non-empty name without '/')")


def representable(value, dtype: str) -> bool:
    """True when ``value`` is stored exactly by ``dtype`` (NaN/inf only in float types)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return not math.isfinite(float(value)) or abs(float(value)) <= np.finfo(dt).max
    if not _is_int(value):
        if not math.isfinite(float(value)) or not float(value).is_integer():
            return False
        value = int(value)
    info = np.iinfo(dt)
    return info.min <= int(value) <= info.max

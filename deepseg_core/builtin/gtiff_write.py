"""GeoTIFF and COG writers of the built-in rasterio I/O plugin: window by window. Options of
``create(path, info, **options)``: ``compress`` ('deflate'; None for none), ``tiled`` (True),
``blocksize`` (256, a multiple of 16), ``bigtiff`` ('IF_SAFER'), ``predictor`` (None, 1, 2 or
3), ``overviews`` (None, 'auto' or factors such as [2, 4, 8]; 'auto' for COG) and
``resampling`` of overviews (nearest for thematic rasters, else average). Any other option
goes to GDAL as a creation option (``num_threads='ALL_CPUS'``).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window as RioWindow

from deepseg_core.errors import DeepSegError, io_error

from ..contracts.raster import RasterInfo, SinkBase, Window
from .gtiff_pam import write_class_sidecar, write_table_sidecar

StrPath = str | os.PathLike[str]  # a file, or a GDAL path such as /vsimem/...
CLASS_NAMES_TAG = "CLASS_NAMES"  # band 1: JSON list, index = pixel value (DeepSeg's reader);
# GDAL and QGIS get the names from the .aux.xml sidecar (gtiff_pam)
LAYER_TYPE_TAG = "LAYER_TYPE"  # band 1: 'thematic' (the KEA/GDAL convention)
PALETTE_DTYPES = ("uint8", "uint16")  # the only types a GeoTIFF colour table accepts
_DEFAULTS = dict(compress="deflate", tiled=True, blocksize=256, bigtiff="IF_SAFER",
                 predictor=None, overviews=None, resampling=None)
_COG_PREDICTOR = {1: "NO", 2: "STANDARD", 3: "FLOATING_POINT"}


def reason(exc: BaseException) -> str:
    """One line saying why rasterio/GDAL failed, including GDAL's own message when chained."""
    text, cause = str(exc), exc.__cause__ or exc.__context__
    if cause is not None and str(cause) not in text:
        text = f"{text} {cause}"
    return " ".join(text.split())


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence rasterio's warning for rasters without georeference (info.crs None says it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def auto_overviews(width: int, height: int, blocksize: int) -> list[int]:
    """Overview factors 2, 4, ... until the coarsest level fits in one block (GDAL's COG rule)."""
    factors, factor = [], 2
    while max(width, height) / (factor // 2) > blocksize:
        factors.append(factor)
        factor *= 2
    return factors


def _settings(path: StrPath, info: RasterInfo, options: dict[str, Any],
              cog: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validated writer options and the remaining GDAL creation options."""
    opts = {**_DEFAULTS, "overviews": "auto" if cog else None, **options}
    s = {k: opts.pop(k) for k in _DEFAULTS}

    def bad(name: str, expected: str) -> DeepSegError:
        return DeepSegError(f"{path}: writer option {name}={s[name]!r}: expected {expected}")

    size = s["blocksize"]
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0 or size % 16:
        raise bad("blocksize", "a positive multiple of 16")
    if not (s["tiled"] is True or (s["tiled"] is False and not cog)):
        raise bad("tiled", "true (a COG is always tiled)" if cog else "true or false")
    if s["compress"] is not None and not isinstance(s["compress"], str):
        raise bad("compress", "a GDAL compression name such as 'deflate', or none")
    compress = s["compress"]
    s["compress"] = None if compress is None or compress.lower() == "none" else compress.lower()
    if str(s["bigtiff"]).upper() not in ("YES", "NO", "IF_NEEDED", "IF_SAFER"):
        raise bad("bigtiff", "YES, NO, IF_NEEDED or IF_SAFER")
    s["bigtiff"] = s["bigtiff"].upper()
    if s["predictor"] not in (None, 1, 2, 3):
        raise bad("predictor", "none, 1, 2 (integers) or 3 (floats)")
    ovr = s["overviews"]
    if ovr in (None, False) or (isinstance(ovr, str) and ovr.lower() == "none"):
        s["overviews"] = []
    elif isinstance(ovr, str) and ovr.lower() == "auto":
        s["overviews"] = "auto" if cog else auto_overviews(info.width, info.height, int(size))
    elif not isinstance(ovr, (list, tuple)) or not all(
            isinstance(f, int) and not isinstance(f, bool) and f >= 2 for f in ovr):
        raise bad("overviews", "none, 'auto' or a list of integer factors >= 2")
    nearest = info.thematic or bool(info.colormap) or bool(info.class_names)
    s["resampling"] = s["resampling"] or ("nearest" if nearest else "average")
    if str(s["resampling"]) not in Resampling.__members__:
        raise bad("resampling", f"one of {', '.join(Resampling.__members__)}")
    if info.colormap and info.dtype not in PALETTE_DTYPES:
        raise DeepSegError(f"{path}: a colour table needs dtype uint8 or uint16, not {info.dtype}")
    return s, {k.lower(): v for k, v in opts.items()}


def _profile(info: RasterInfo, s: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    profile = dict(driver="GTiff", width=info.width, height=info.height, count=info.count,
                   dtype=info.dtype, crs=info.crs, nodata=info.nodata, bigtiff=s["bigtiff"],
                   transform=None if info.transform == Affine.identity() else info.transform)
    if s["compress"]:
        profile["compress"] = s["compress"]
    if s["predictor"]:
        profile["predictor"] = s["predictor"]
    if s["tiled"]:
        profile.update(tiled=True, blockxsize=s["blocksize"], blockysize=s["blocksize"])
    return {**profile, **extra}


def _write_extras(ds: Any, info: RasterInfo) -> None:
    """Band descriptions, colour table, class names and metadata tags."""
    for band, text in enumerate(info.descriptions[:info.count], start=1):
        if text:
            ds.set_band_description(band, text)
    if info.colormap:
        ds.write_colormap(1, {int(v): tuple(rgba) for v, rgba in info.colormap.items()})
    band_tags = {LAYER_TYPE_TAG: "thematic"} if info.thematic else {}
    if info.class_names:
        band_tags[CLASS_NAMES_TAG] = json.dumps(list(info.class_names))
    if band_tags:
        ds.update_tags(1, **band_tags)
    if info.metadata:
        ds.update_tags(**{str(k): str(v) for k, v in info.metadata.items()})


class GTiffSink(SinkBase):
    """A GeoTIFF being written window by window; ``close()`` builds its overviews."""

    def __init__(self, path: StrPath, info: RasterInfo, target: str, profile: dict[str, Any],
                 settings: dict[str, Any]) -> None:
        self.path, self.info = Path(path), info
        self._target, self._settings = target, settings
        self._ds: Any = None  # the open rasterio dataset
        if "://" not in str(path) and not str(path).startswith("/vsi"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with quiet():  # an identity transform is written as none
                self._ds = rasterio.open(target, "w", **profile)
            _write_extras(self._ds, info)
        except Exception as exc:
            self.abort()
            raise DeepSegError(f"{path}: cannot create the raster: {reason(exc)}") from exc

    def write(self, array: np.ndarray, window: Window) -> None:
        """Write ``(bands, rows, cols)`` pixels (2-D for one band) at ``window``."""
        array = self.checked(array, window)
        rio = RioWindow(window.col_off, window.row_off, window.width, window.height)
        try:
            self._ds.write(array.astype(self.info.dtype, copy=False), window=rio)
        except Exception as exc:
            raise DeepSegError(f"{self.path}: cannot write {window}: {reason(exc)}") from exc

    def close(self) -> None:
        """Finish the file (overviews; COG conversion). Closing twice does nothing."""
        if self._ds is None:
            return
        self._ds.close()
        self._ds = None
        try:
            self._finish()
            write_class_sidecar(self.path, self.info)
        except Exception as exc:
            raise DeepSegError(f"{self.path}: cannot finish the raster: {reason(exc)}") from exc

    def _finish(self) -> None:
        factors = self._settings["overviews"]
        if factors and factors != "auto":
            with rasterio.open(self._target, "r+") as ds:
                ds.build_overviews(list(factors), Resampling[self._settings["resampling"]])

    def abort(self) -> None:
        """Close the file without finishing it."""
        if self._ds is not None:
            self._ds.close()
            self._ds = None

class CogSink(GTiffSink):
    """Writes a temporary tiled GeoTIFF, converted to a Cloud Optimized GeoTIFF at close."""

    def __init__(self, path: StrPath, info: RasterInfo, settings: dict[str, Any],
                 extra: dict[str, Any]) -> None:
        self._extra = extra
        temp = Path(path).with_name(f".{Path(path).name}.partial.tif")
        quick = {**settings, "compress": "deflate", "predictor": None, "tiled": True}
        fast = {**_profile(info, quick, {"num_threads": extra.get("num_threads", 1)}), "zlevel": 1}
        super().__init__(path, info, str(temp), fast, settings)

    def _finish(self) -> None:
        try:
            super()._finish()  # explicit factors: built on the temporary, kept by the COG
            s, ovr = self._settings, self._settings["overviews"]
            options = dict(blocksize=s["blocksize"], bigtiff=s["bigtiff"],
                           resampling=s["resampling"].upper(),
                           overviews="AUTO" if ovr == "auto" else
                           "FORCE_USE_EXISTING" if ovr else "NONE")
            options["compress"] = s["compress"] or "NONE"
            if s["predictor"]:
                options["predictor"] = _COG_PREDICTOR[s["predictor"]]
            with quiet():
                rasterio.shutil.copy(self._target, str(self.path), driver="COG",
                                     **{**options, **self._extra})
        finally:
            os.remove(self._target)

    def abort(self) -> None:
        super().abort()
        if os.path.exists(self._target):
            os.remove(self._target)


class _Tables:
    threads_option = "num_threads"  # GDAL compresses in this many threads (a COG: both steps)
    def add_attribute_table(self, path: StrPath, columns: dict[str, np.ndarray]) -> None:
        """Give a finished raster band 1's attribute table ``{name: values}`` (in .aux.xml)."""
        try:
            write_table_sidecar(path, columns)
        except OSError as exc:
            raise io_error(f"{path}.aux.xml", exc, "cannot write the attribute table") from None


class GTiffWriter(_Tables):
    """Writes tiled, compressed GeoTIFFs window by window."""

    extensions: tuple[str, ...] = (".tif", ".tiff")

    def create(self, path: StrPath, info: RasterInfo, **options: Any) -> GTiffSink:
        """Start writing ``path`` (options: see the module docstring)."""
        settings, extra = _settings(path, info, options, cog=False)
        return GTiffSink(path, info, str(path), _profile(info, settings, extra), settings)


class CogWriter(_Tables):
    """Writes Cloud Optimized GeoTIFFs (via a temporary GeoTIFF, converted at close)."""

    extensions: tuple[str, ...] = ()  # writes .tif too, but only when asked by name

    def create(self, path: StrPath, info: RasterInfo, **options: Any) -> CogSink:
        """Start writing ``path`` (options: see the module docstring)."""
        settings, extra = _settings(path, info, options, cog=True)
        return CogSink(path, info, settings, extra)

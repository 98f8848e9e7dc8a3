"""KEA writer: windowed writes into HDF5 chunks; statistics, attribute tables and overviews
are computed at ``close()`` by streaming over the written bands."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from deepseg_core.contracts.raster import RasterInfo, SinkBase, Window
from deepseg_core.errors import DeepSegError

from . import rat
from .layout import chunk_cache, reason
from .options import settings
from .overviews import build_overviews
from .skeleton import create_structure, write_metadata
from .stats import band_statistics, histogram_metadata


class KeaSink(SinkBase):
    """A KEA file being written window by window; ``close()`` finalizes it."""

    def __init__(self, path, info: RasterInfo, options: dict):
        self.path, self.info = Path(path), info
        self._s = settings(path, info, options)  # everything is checked before the file exists
        self._f = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            nbytes, nslots = chunk_cache(info.width, self._s["block"], info.dtype, info.count)
            self._f = h5py.File(self.path, "w", libver="earliest", rdcc_nbytes=nbytes,
                                rdcc_nslots=nslots, rdcc_w0=1.0)
            create_structure(self._f, info, self._s)
            self._data = [self._f[f"BAND{k}/DATA"] for k in range(1, info.count + 1)]
        except Exception as exc:
            if self._f is not None:  # ours, half made: remove it (never a file we did not open)
                self.abort()
                self.path.unlink(missing_ok=True)
            if isinstance(exc, DeepSegError):
                raise
            raise DeepSegError(f"{path}: cannot create the KEA file: {reason(exc)}") from exc

    def write(self, array: np.ndarray, window: Window) -> None:
        """Write ``(bands, rows, cols)`` pixels (2-D for one band) at ``window``."""
        if self._f is None:
            raise DeepSegError(f"{self.path}: the KEA file is already closed")
        array = self.checked(array, window)
        if not window.height or not window.width:
            return
        try:
            for data, pixels in zip(self._data, array):
                data[window.slices] = pixels.astype(data.dtype, copy=False)
        except Exception as exc:
            raise DeepSegError(f"{self.path}: cannot write {window}: {reason(exc)}") from exc

    def close(self) -> None:
        """Compute statistics, attribute tables and overviews, then close. Twice: no-op."""
        if self._f is None:
            return
        try:
            for index in range(1, self.info.count + 1):
                self._finish_band(index)
            self._f.flush()
        except Exception as exc:
            self.abort()
            raise DeepSegError(f"{self.path}: cannot finish the KEA file: {reason(exc)}") \
                from exc
        self.abort()

    def _finish_band(self, index: int) -> None:
        s, info = self._s, self.info
        group = self._f[f"BAND{index}"]
        histogram = None
        if s["statistics"]:
            stats, histogram = band_statistics(group["DATA"], info.nodata, s["block"],
                                               histogram=s["thematic"])
            write_metadata(group["METADATA"], stats)
        first = index == 1
        columns = rat.band_columns(info.colormap if first else None,
                                   info.class_names if first else None, histogram,
                                   s["attribute_table"] if first else None)
        if columns:
            rows = max(len(c.values) for c in columns)
            if any(c.name == "Histogram" and c.usage == "PixelCount" for c in columns):
                write_metadata(group["METADATA"], histogram_metadata(rows))
            rat.write_columns(group["ATT"], columns, s["att_block_size"], s["deflate"])
        if s["overviews"]:
            build_overviews(group, s["overviews"], s["resampling"], info.nodata, s["block"],
                            s["deflate"])

    def abort(self) -> None:
        if self._f is not None:
            try:
                self._f.close()
            finally:
                self._f = None


class KeaWriter:
    """Writes KEA files with h5py that GDAL's KEA driver reads (no GDAL KEA driver needed)."""

    extensions: tuple[str, ...] = (".kea",)

    def create(self, path, info: RasterInfo, **options) -> KeaSink:
        """Start writing ``path`` (options: see :mod:`deepseg_kea_io.options`)."""
        return KeaSink(path, info, options)

    def add_attribute_table(self, path, columns: dict) -> None:
        """Add ``{name: values}`` columns to band 1's attribute table of a finished file (a
        column of the same name is replaced; the others, such as Histogram, stay)."""
        try:
            with h5py.File(path, "r+") as f:
                att = f["BAND1/ATT"]
                extra = {name: np.asarray(values) for name, values in columns.items()}
                kept = {c.name: c.values for c in rat.read_columns(att)}
                merged = rat.band_columns(None, None, None, {**kept, **extra})
                block = int(np.asarray(att["HEADER/CHUNKSIZE"][()]).reshape(-1)[0]) or 1000
                rat.write_columns(att, merged, block, 1)
                rows = max(len(c.values) for c in merged)
                if "Histogram" in kept:  # the table grew: the histogram's bins with it
                    write_metadata(f["BAND1/METADATA"], histogram_metadata(rows))
        except (OSError, KeyError, ValueError) as exc:
            raise DeepSegError(f"{path}: cannot add the attribute table: {reason(exc)}") \
                from exc

"""KEA reader: windowed reads of bands, overviews and masks straight from the HDF5 chunks."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from deepseg_core.contracts.raster import RasterInfo, SourceBase, Window
from deepseg_core.errors import DeepSegError

from . import rat
from .header import Gcp, KeaBand, read_band, read_gcps, read_header, read_metadata
from .layout import chunk_cache, group_children_sorted, has_signature, open_image, reason


class KeaSource(SourceBase):
    """An open KEA file; ``read`` returns ``(bands, rows, cols)``, padding outside the raster."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DeepSegError(f"{path}: file not found")
        if not has_signature(path):
            raise DeepSegError(f"{path}: not a KEA file: expected an HDF5 file (KEA is HDF5), "
                               "but the HDF5 signature is missing")
        try:
            self._f = h5py.File(path, "r")
        except OSError as exc:
            raise DeepSegError(f"{path}: cannot open the KEA (HDF5) file (truncated or corrupt "
                               f"file?): {reason(exc)}") from exc
        try:
            self._parse()
        except DeepSegError:
            self._f.close()
            raise
        except Exception as exc:
            self._f.close()
            raise DeepSegError(f"{path}: cannot read the KEA header (damaged file?): "
                               f"{reason(exc)}") from exc

    def _parse(self) -> None:
        head = read_header(self._f, self.path)
        self.bands: tuple[KeaBand, ...] = tuple(read_band(self._f, k, self.path)
                                                for k in range(1, head.count + 1))
        self.version = head.version
        self._data = []
        for band in self.bands:
            cache = chunk_cache(head.width, band.block_size or 256, band.dtype, head.count)
            self._data.append(open_image(self._f, f"BAND{band.index}/DATA", *cache))
        first = self.bands[0] if self.bands else None
        colormap, names = rat.trimmed(*self._table(1)) if first else (None, None)
        self.info = RasterInfo(
            width=head.width, height=head.height, count=head.count,
            dtype=np.result_type(*[b.dtype for b in self.bands]).name if first else "uint8",
            crs=head.crs, transform=head.transform, nodata=first.nodata if first else None,
            descriptions=tuple(b.description for b in self.bands),
            colormap=colormap, class_names=names,
            thematic=bool(first and first.thematic),
            metadata=read_metadata(self._f.get("METADATA")))

    def _band(self, band: int) -> KeaBand:
        if not isinstance(band, (int, np.integer)) or not 1 <= band <= len(self.bands):
            raise DeepSegError(f"{self.path}: no band {band} (the raster has {len(self.bands)})")
        return self.bands[int(band) - 1]

    def read(self, window: Window | None = None, bands: list[int] | None = None) -> np.ndarray:
        """Pixels ``(bands, rows, cols)`` of ``window``; outside the raster: nodata (or 0)."""
        info = self.info
        window = self._window(window, info.height, info.width)
        bands = list(range(1, info.count + 1)) if bands is None else list(bands)
        chosen = [self._band(b) for b in bands]
        out = np.empty((len(chosen), window.height, window.width), dtype=info.dtype)
        for i, band in enumerate(chosen):
            self._read_into(out[i], self._data[band.index - 1], window, band.nodata)
        return out

    def overviews(self, band: int = 1) -> list[tuple[int, int]]:
        """Sizes ``(rows, cols)`` of a band's overviews, finest first (level 1, 2, ...)."""
        return list(self._band(band).overviews)

    def read_overview(self, band: int, level: int, window: Window | None = None) -> np.ndarray:
        """Pixels ``(rows, cols)`` of overview ``level`` (1-based) of ``band``, padded outside."""
        info = self._band(band)
        if not 1 <= level <= len(info.overviews):
            raise DeepSegError(f"{self.path}: band {band} has no overview {level} (it has "
                               f"{len(info.overviews)})")
        group = self._f[f"BAND{band}/OVERVIEWS"]
        ds = group[group_children_sorted(group, "OVERVIEW")[level - 1]]
        window = self._window(window, *ds.shape)
        out = np.empty((window.height, window.width), dtype=info.dtype)
        return self._read_into(out, ds, window, info.nodata)

    def read_mask(self, band: int = 1, window: Window | None = None) -> np.ndarray:
        """GDAL-style mask ``(rows, cols)`` uint8 (0 invalid, 255 valid) of ``band``: its MASK
        dataset, else derived from nodata (all valid without either)."""
        info = self._band(band)
        window = self._window(window, self.info.height, self.info.width)
        out = np.empty((window.height, window.width), dtype=np.uint8)
        if info.has_mask:
            return self._read_into(out, self._f[f"BAND{band}/MASK"], window, 0)
        pixels = self.read(window, [band])[0]
        inside = np.zeros(out.shape, dtype=bool)
        clip = window.clip(self.info.height, self.info.width)
        inside[clip.shift(-window.row_off, -window.col_off).slices] = True
        valid = inside if info.nodata is None else inside & ~_is_nodata(pixels, info.nodata)
        out[...] = np.where(valid, 255, 0)
        return out

    @property
    def gcps(self) -> tuple[list[Gcp], str | None]:
        """Ground control points and their projection WKT (``([], None)`` when none)."""
        return self._guard("the GCPs", lambda: read_gcps(self._f))

    def attribute_columns(self, band: int = 1) -> list[rat.Column]:
        """The band's attribute-table columns (name, usage, values), in COLNUM order."""
        self._band(band)
        return self._columns(band)

    def attribute_table(self, band: int = 1) -> dict[str, np.ndarray]:
        """The band's attribute table: column name -> values (one per row), in COLNUM order."""
        return {c.name: c.values for c in self.attribute_columns(band)}

    def band_metadata(self, band: int = 1) -> dict[str, str]:
        """The band's metadata (default domain), including LAYER_TYPE as GDAL reports it."""
        return dict(self._band(band).metadata)

    def _table(self, band: int) -> tuple[dict | None, tuple[str, ...] | None]:
        columns = self._columns(band)
        return rat.colour_table(columns), rat.class_names(columns)

    def _columns(self, band: int) -> list[rat.Column]:
        att = self._f.get(f"BAND{band}/ATT")
        if not isinstance(att, h5py.Group) or "HEADER" not in att:
            return []
        return self._guard(f"the attribute table of band {band}", lambda: rat.read_columns(att))

    def _guard(self, what: str, action):
        try:
            return action()
        except DeepSegError:
            raise
        except Exception as exc:
            raise DeepSegError(f"{self.path}: cannot read {what} (damaged KEA file?): "
                               f"{reason(exc)}") from exc

    def _window(self, window: Window | None, height: int, width: int) -> Window:
        if window is None:
            return Window(0, 0, height, width)
        if window.height < 0 or window.width < 0:
            raise DeepSegError(f"{self.path}: window {window} has a negative size")
        return window

    def _read_into(self, out: np.ndarray, ds: h5py.Dataset, window: Window, nodata):
        """Fill ``out`` with ``window`` of a 2-D dataset, reading only the slice inside it."""
        inner = window.clip(*ds.shape)
        if inner != window:
            out[...] = 0 if nodata is None else nodata
        if inner.height and inner.width:
            dest = inner.shift(-window.row_off, -window.col_off)
            try:
                ds.read_direct(out, np.s_[inner.slices], np.s_[dest.slices])
            except Exception as exc:
                raise DeepSegError(f"{self.path}: cannot read pixels of {window} from {ds.name} "
                                   f"(truncated or corrupt file?): {reason(exc)}") from exc
        return out

    def close(self) -> None:
        """Release the file."""
        if self._f.id.valid:
            self._f.close()



def _is_nodata(pixels: np.ndarray, nodata: float) -> np.ndarray:
    if isinstance(nodata, float) and np.isnan(nodata):
        return np.isnan(pixels)
    return pixels == nodata


class KeaReader:
    """Reads KEA files (HDF5 + ``.kea``) with h5py: no GDAL KEA driver needed."""

    extensions: tuple[str, ...] = (".kea",)

    def can_open(self, path) -> bool:
        """GDAL's identify rule: suffix ``.kea`` (any case) and the HDF5 signature."""
        return Path(path).suffix.lower() == ".kea" and has_signature(path)

    def open(self, path) -> KeaSource:
        """Open ``path`` for windowed reads."""
        return KeaSource(path)

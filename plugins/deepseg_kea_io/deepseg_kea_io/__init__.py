"""KEA (HDF5) raster reader and writer for DeepSeg, in pure h5py."""

from plugins.deepseg_kea_io.deepseg_kea_io.header import Gcp, KeaBand
from plugins.deepseg_kea_io.deepseg_kea_io.reader import KeaReader, KeaSource
from plugins.deepseg_kea_io.deepseg_kea_io.writer import KeaSink, KeaWriter

__all__ = ["Gcp", "KeaBand", "KeaReader", "KeaSource", "KeaSink", "KeaWriter"]

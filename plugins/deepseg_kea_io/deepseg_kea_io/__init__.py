"""KEA (HDF5) raster reader and writer for DeepSeg, in pure h5py."""

from .header import Gcp, KeaBand
from .reader import KeaReader, KeaSource
from .writer import KeaSink, KeaWriter

__all__ = ["Gcp", "KeaBand", "KeaReader", "KeaSource", "KeaSink", "KeaWriter"]

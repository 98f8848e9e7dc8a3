"""Hook implementations of the deepseg_kea_io plugin: the ``kea`` reader and writer."""

from deepseg_core import hookimpl

from .reader import KeaReader
from .writer import KeaWriter


@hookimpl
def deepseg_register_readers(registry):
    """Register the ``kea`` reader."""
    registry.add_reader("kea", KeaReader())


@hookimpl
def deepseg_register_writers(registry):
    """Register the ``kea`` writer."""
    registry.add_writer("kea", KeaWriter())

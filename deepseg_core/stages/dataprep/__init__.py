"""Dataprep: label rasterization, overlapping tiles, the HDF5 store (``run``)."""

from .stage import run

__all__ = ["run"]

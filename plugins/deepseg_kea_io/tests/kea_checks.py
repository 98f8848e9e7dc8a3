"""Helpers of the KEA plugin's tests: GDAL's checksum and a comparable HDF5 tree signature."""

from __future__ import annotations

import h5py
import numpy as np

PRIMES = np.array([7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43], dtype=np.int64)


def gdal_checksum(band: np.ndarray) -> int:
    """GDAL's band checksum (docs/KEA.md section 5) of an integer band."""
    values = np.asarray(band, dtype=np.int64).reshape(-1)
    primes = PRIMES[np.arange(values.size) % PRIMES.size]
    return int((values % primes).sum() & 0xFFFF)


def _type(t) -> tuple:
    """What matters of an HDF5 datatype: class, size, string kind, compound members."""
    if isinstance(t, h5py.h5t.TypeStringID):
        size = "vlen" if t.is_variable_str() else t.get_size()
        return ("string", size, t.get_cset(), t.get_strpad())
    if isinstance(t, h5py.h5t.TypeCompoundID):
        return ("compound", t.get_size(),
                tuple((t.get_member_name(i), t.get_member_offset(i), _type(t.get_member_type(i)))
                      for i in range(t.get_nmembers())))
    if isinstance(t, h5py.h5t.TypeIntegerID):
        return ("int", t.get_size(), t.get_order(), t.get_sign())
    if isinstance(t, h5py.h5t.TypeFloatID):
        return ("float", t.get_size(), t.get_order())
    return (type(t).__name__, t.get_size())


def tree(path, shapes: bool = True) -> dict[str, tuple]:
    """Every group and dataset of an HDF5 file: type, space, shape, chunks, filters, attributes."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            attrs = tuple(sorted((k, _type(obj.attrs.get_id(k).get_type()),
                                  obj.attrs.get_id(k).shape) for k in obj.attrs))
            if isinstance(obj, h5py.Dataset):
                plist = obj.id.get_create_plist()
                filters = tuple(plist.get_filter(i)[0] for i in range(plist.get_nfilters()))
                out[name] = ("dataset", _type(obj.id.get_type()),
                             obj.id.get_space().get_simple_extent_type(),
                             obj.shape if shapes else len(obj.shape), obj.maxshape if shapes
                             else None, obj.chunks, filters, attrs)
            else:
                out[name] = ("group", attrs)
        f.visititems(visit)
    return out

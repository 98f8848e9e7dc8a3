"""KEA on-disk constants (see shared/docs/KEA.md) and the small h5py helpers both sides use."""

from __future__ import annotations

from collections.abc import Iterator

import h5py
import numpy as np

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SUPPORTED_VERSIONS = ("1.0", "1.1", "2.0")  # what libkea's isKEAImage() accepts
WRITE_VERSION = "1.1"
GENERATOR = "DeepSeg"
IMAGE_CLASS = ("IMAGE", 6)  # fixed-length NULLTERM string and its size in bytes
IMAGE_VERSION = ("1.2", 4)
DEFAULT_BLOCK = 256
DEFAULT_ATT_BLOCK = 1000
PALETTE_USAGE = 2  # LAYER_USAGE code GDAL reads as GCI_PaletteIndex
CACHE_BUDGET = 256 << 20  # bytes of chunk cache for all bands of a file together

# KEA DATATYPE code <-> little-endian numpy type (0 = undefined)
DTYPE_BY_CODE = {1: "<i1", 2: "<i2", 3: "<i4", 4: "<i8", 5: "<u1", 6: "<u2", 7: "<u4", 8: "<u8",
                 9: "<f4", 10: "<f8"}
CODE_BY_DTYPE = {np.dtype(v).name: k for k, v in DTYPE_BY_CODE.items()}

STRING = h5py.string_dtype("ascii")  # variable-length C string, ASCII charset


def has_signature(path) -> bool:
    """True when the file starts with the HDF5 signature (no user block)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError:
        return False


def reason(exc: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def dtype_of_code(code: int) -> np.dtype | None:
    """The numpy dtype of a KEA DATATYPE code (None for an unsupported code)."""
    name = DTYPE_BY_CODE.get(int(code))
    return np.dtype(name) if name else None


def text(value) -> str:
    """A string read from HDF5 (bytes or str) as str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def to_bytes(value) -> bytes:
    """A string to store as a KEA (ASCII-tagged, UTF-8 in practice) variable-length string."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def read_str(group: h5py.Group, name: str, default: str | None = None) -> str | None:
    """The first element of a 1-D string dataset (``default`` when missing)."""
    if name not in group:
        return default
    data = group[name][()]
    return text(data.flat[0] if isinstance(data, np.ndarray) else data)


def read_values(group: h5py.Group, name: str, dtype) -> np.ndarray | None:
    """A small numeric dataset as a 1-D array of ``dtype`` (None when missing)."""
    if name not in group:
        return None
    return np.asarray(group[name][()], dtype=dtype).reshape(-1)


def write_str(group: h5py.Group, name: str, value) -> None:
    """Store ``value`` as a variable-length ASCII string dataset of shape (1,)."""
    if name in group:
        del group[name]
    group.create_dataset(name, shape=(1,), dtype=STRING, data=[to_bytes(value)])


def write_values(group: h5py.Group, name: str, values, dtype) -> h5py.Dataset:
    """Store a small 1-D numeric dataset (contiguous, like libkea's header fields)."""
    if name in group:
        del group[name]
    return group.create_dataset(name, data=np.asarray(values, dtype=dtype).reshape(-1))


def fixed_str_attr(obj, name: str, value: str, size: int) -> None:
    """A scalar fixed-length, NULL-terminated ASCII string attribute (as libkea writes)."""
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(size)
    tid.set_strpad(h5py.h5t.STR_NULLTERM)
    tid.set_cset(h5py.h5t.CSET_ASCII)
    name_b = name.encode("ascii")
    if h5py.h5a.exists(obj.id, name_b):
        h5py.h5a.delete(obj.id, name_b)
    attr = h5py.h5a.create(obj.id, name_b, tid, h5py.h5s.create(h5py.h5s.SCALAR))
    attr.write(np.array(value.encode("ascii"), dtype=f"S{size}"))


def filters(deflate: int) -> dict:
    """h5py arguments for libkea's filter pipeline: shuffle, then deflate at ``deflate``."""
    return dict(shuffle=True, compression="gzip", compression_opts=int(deflate))


def create_image(group: h5py.Group, name: str, shape: tuple[int, int], dtype, block: int,
                 deflate: int, fill=0, block_attr: bool = True) -> h5py.Dataset:
    """A square-chunked, shuffled and deflated image dataset with libkea's attributes."""
    ds = group.create_dataset(name, shape=shape, dtype=np.dtype(dtype).newbyteorder("<"),
                              chunks=(block, block), fillvalue=fill, **filters(deflate))
    fixed_str_attr(ds, "CLASS", *IMAGE_CLASS)
    fixed_str_attr(ds, "IMAGE_VERSION", *IMAGE_VERSION)
    if block_attr:
        ds.attrs.create("BLOCK_SIZE", block, dtype="<u2")
    return ds


def chunk_cache(width: int, block: int, dtype, count: int) -> tuple[int, int]:
    """Chunk-cache bytes and slots per band: two rows of chunks (so tiles straddling a chunk
    row, and partly written chunks, are decompressed and compressed once), within a budget."""
    rows = 2 * -(-width // block) * block * block * np.dtype(dtype).itemsize
    nbytes = int(min(max(rows, 1 << 20), max(4 << 20, CACHE_BUDGET // max(count, 1))))
    return nbytes, 100_003  # a prime well above the number of chunks that fit


def open_image(group: h5py.Group, name: str, nbytes: int, nslots: int) -> h5py.Dataset:
    """Open an image dataset with its own chunk cache (kept while the handle lives)."""
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_chunk_cache(nslots, nbytes, 1.0)
    return h5py.Dataset(h5py.h5d.open(group.id, name.encode(), dapl=dapl))


def blocks(height: int, width: int, size: int) -> Iterator[tuple[slice, slice]]:
    """Row-major (row slice, column slice) pairs tiling a ``height`` x ``width`` array."""
    for r in range(0, height, size):
        for c in range(0, width, size):
            yield slice(r, min(r + size, height)), slice(c, min(c + size, width))


def group_children_sorted(group: h5py.Group, prefix: str) -> list[str]:
    """Names ``prefix1``, ``prefix2``, ... of a group's children, sorted by their number."""
    def number(name: str) -> int:
        tail = name[len(prefix):]
        return int(tail) if tail.isdigit() else 1 << 30
    return sorted(group, key=lambda n: (number(n), n))

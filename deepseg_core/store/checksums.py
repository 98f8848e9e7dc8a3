"""The integrity check a store passes before it is reused (docs/store.md).

Every dataset of a store carries HDF5's Fletcher32 filter: each chunk ends in a checksum of
its stored (compressed) bytes. The check walks every dataset's chunk index once, reads every
chunk's raw bytes and recomputes that checksum, without decompressing (HDF5's own algorithm,
H5_checksum_fletcher32, evaluated with numpy). It also counts the chunks: a damaged index that
lost some would otherwise read back as zeros.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

BLOCK = 1 << 21  # 16-bit words per numpy step: keeps the int64 dot product exact
_INDEX = np.arange(BLOCK, dtype=np.int64)


def fletcher32(data: bytes) -> int:
    """HDF5's Fletcher32 of ``data``: big-endian 16-bit words summed modulo 65535 (the odd
    last byte padded with zero), the sum of the running sums in the upper half."""
    if len(data) % 2:
        data = data + b"\0"
    words = np.frombuffer(data, dtype=">u2")
    n, total, weighted = words.size, 0, 0
    for start in range(0, n, BLOCK):
        block = words[start:start + BLOCK].astype(np.int64)
        part = int(block.sum())
        total += part
        weighted += int(np.dot(block, _INDEX[:block.size])) + start * part
    running = n * total - weighted  # sum over i of the first i+1 words' sum
    low = 0 if total == 0 else (total - 1) % 65535 + 1
    high = 0 if running == 0 else (running - 1) % 65535 + 1
    return (high << 16) | low


def datasets(file: h5py.File) -> list[str]:
    names = []
    file.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                    else None)
    return names


def damage(file: h5py.File, path: Path) -> tuple[str, int | None, str] | None:
    """The first damaged part of the open store ``file`` at ``path`` as (dataset, tile index
    or None, why), or None when every chunk's checksum holds. OSError propagates."""
    with open(path, "rb") as raw:
        for name in datasets(file):
            ds = file[name]
            if not ds.fletcher32 or ds.chunks is None:
                return name, None, "no checksums (written by an older deepseg)"
            found = _check_chunks(ds, raw.fileno())
            if found is not None:
                return (name, *found)
    return None


def _fletcher_bit(ds: h5py.Dataset) -> int:
    """The bit of a chunk's filter mask that says the Fletcher32 filter was skipped."""
    dcpl = ds.id.get_create_plist()
    for i in range(dcpl.get_nfilters()):
        if dcpl.get_filter(i)[0] == h5py.h5z.FILTER_FLETCHER32:
            return 1 << i
    return 0


def _check_chunks(ds: h5py.Dataset, fd: int) -> tuple[int | None, str] | None:
    expected = math.prod(math.ceil(s / c) for s, c in zip(ds.shape, ds.chunks))
    skipped = _fletcher_bit(ds)
    seen: list[int] = [0]
    bad: list[tuple[tuple[int, ...], str]] = []  # (chunk offset, why)

    def visit(info: Any) -> None:  # h5py's StoreInfo
        seen[0] += 1
        if bad:
            return
        data = os.pread(fd, info.size, info.byte_offset)
        if info.filter_mask & skipped or len(data) < 4 or len(data) != info.size:
            bad.append((info.chunk_offset, "chunk without its checksum"))
        elif fletcher32(data[:-4]) != int.from_bytes(data[-4:], "little"):
            bad.append((info.chunk_offset, "Fletcher32 checksum mismatch"))

    try:
        ds.id.chunk_iter(visit)
    except (AttributeError, NotImplementedError):  # HDF5 < 1.14: decode every chunk instead
        return _read_all(ds)
    except OSError as exc:
        return None, f"chunk index unreadable ({' '.join(str(exc).split())})"
    if bad:
        offset, why = bad[0]
        return (offset[0] // ds.chunks[0] if ds.ndim else None), why
    if seen[0] != expected:
        return None, f"{seen[0]} of {expected} chunks present"
    return None


def _read_all(ds: h5py.Dataset) -> tuple[int | None, str] | None:
    step = ds.chunks[0] if ds.ndim else 1
    for start in range(0, ds.shape[0] if ds.ndim else 1, step):
        try:
            ds[start:start + step] if ds.ndim else ds[()]
        except OSError as exc:
            return start, " ".join(str(exc).split())
    return None

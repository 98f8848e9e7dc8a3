"""Writes PyTorch state-dict files (zip or legacy ``torch.save`` layout) without PyTorch.

The pickle is written opcode by opcode, as ``torch.save`` writes it: an ``OrderedDict`` of
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)``
calls whose storages are persistent ids ``('storage', torch.FloatStorage, key, 'cpu',
count)`` (legacy: one more item, the view metadata ``None``).
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from deepseg_core.models.statedict import LEGACY_MAGIC

STORAGES = {"float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage",
            "int64": "LongStorage", "int32": "IntStorage", "uint8": "ByteStorage"}


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _ints(values: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(b"J" + struct.pack("<i", v) for v in values) + b"t"  # MARK .. TUPLE


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def state_pickle(arrays: dict[str, np.ndarray], legacy: bool = False) -> bytes:
    """The ``data.pkl`` of ``arrays`` (storage keys "0", "1", ... in order)."""
    out = [b"\x80\x02", _global("collections", "OrderedDict"), b")R("]
    for key, (name, array) in enumerate(arrays.items()):
        strides = tuple(int(np.prod(array.shape[i + 1:])) for i in range(array.ndim))
        pid = (b"(" + _text("storage") + _global("torch", STORAGES[str(array.dtype)])
               + _text(str(key)) + _text("cpu") + b"J" + struct.pack("<i", array.size)
               + (b"N" if legacy else b"") + b"tQ")
        out += [_text(name), _global("torch._utils", "_rebuild_tensor_v2"), b"(", pid,
                b"J\0\0\0\0", _ints(array.shape), _ints(strides), b"\x89",
                _global("collections", "OrderedDict"), b")R", b"tR"]
    return b"".join(out) + b"u."


def write_state_dict(path: str | Path, arrays: dict[str, np.ndarray],
                     legacy: bool = False) -> None:
    """``arrays`` as ``torch.save(state_dict, path)`` writes them (zip; or the legacy stream)."""
    data = [a.astype(a.dtype.newbyteorder("<")).tobytes()
            for a in arrays.values()]
    if legacy:
        header = [LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                       "type_sizes": {"short": 2, "int": 4, "long": 4}}]
        with open(path, "wb") as f:
            for item in header:
                f.write(pickle.dumps(item, protocol=2))
            f.write(state_pickle(arrays, legacy=True))
            f.write(pickle.dumps([str(k) for k in range(len(data))], protocol=2))
            for array, raw in zip(arrays.values(), data):
                f.write(struct.pack("<q", array.size) + raw)
        return
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", state_pickle(arrays))
        archive.writestr("archive/byteorder", "little")
        for key, raw in enumerate(data):
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")

"""PyTorch state-dict files (``.pth``) read as NumPy arrays, without PyTorch and without code.

Both layouts of ``torch.save``: the zip archive (PyTorch 1.6 on: ``<name>/data.pkl``, one
record ``<name>/data/<key>`` per storage) and the legacy stream (pickles of a magic number,
protocol, system information, the object and the storage keys, then each storage as an 8-byte
element count and its bytes). Pickles are read by an unpickler that knows only what a state
dict of tensors needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``, the
``torch.*Storage`` types of numbers) and refuses any other global before anything is called.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import zipfile
from collections import OrderedDict, namedtuple
from typing import Any

import numpy as np

from ..errors import DeepSegError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: torch storage type -> little-endian NumPy dtype of its elements
DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
          "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
          "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}


_Storage = namedtuple("_Storage", "dtype key count")  # count: elements
_Tensor = namedtuple("_Tensor", "storage offset shape stride")  # offset, stride: in elements


def _rebuild_tensor(storage: Any, offset: Any, shape: Any, stride: Any, *_: Any) -> _Tensor:
    """Stands for ``torch._utils._rebuild_tensor_v2``: records where the tensor's numbers are."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    return _Tensor(storage, int(offset), tuple(map(int, shape)), tuple(map(int, stride)))


class _Unpickler(pickle.Unpickler):
    """Builds state dicts of tensor placeholders; refuses every other global."""

    def __init__(self, data: bytes, path: str) -> None:
        super().__init__(io.BytesIO(data))
        self.path = path
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in DTYPES:
            return DTYPES[name]  # a storage type stands as its dtype, never called
        raise DeepSegError(f"{self.path}: refused: its pickle names {module}.{name}, which a "
                           f"PyTorch state dict of tensors never needs (nothing was run)")

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage type, key, location, element count[, view metadata])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and pid[1] in DTYPES.values() and (len(pid) == 5 or pid[5] is None)):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        self.storages[str(pid[2])] = _Storage(pid[1], str(pid[2]), int(pid[4]))
        return self.storages[str(pid[2])]


def _unpickle(data: bytes, path: str) -> tuple[Any, dict[str, _Storage]]:
    """The object of one pickle and the storages it refers to, by key."""
    unpickler = _Unpickler(data, path)
    try:
        return unpickler.load(), unpickler.storages
    except DeepSegError:
        raise
    except Exception as error:  # a malformed pickle can raise almost anything
        raise DeepSegError(f"{path}: not a PyTorch state dict ({error})") from None


def _from_zip(path: str, blob: bytes) -> tuple[Any, dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        names = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not names:
            raise DeepSegError(f"{path}: not a PyTorch state dict (a zip without data.pkl)")
        prefix = names[0][:-len("data.pkl")] + "data/"
        state, _ = _unpickle(archive.read(names[0]), path)
        return state, {n[len(prefix):]: archive.read(n) for n in archive.namelist()
                       if n.startswith(prefix)}


def _from_legacy(path: str, blob: bytes) -> tuple[Any, dict[str, bytes]]:
    stream = io.BytesIO(blob)
    magic, _ = _unpickle(_pickle_at(stream, path), path)
    if magic != LEGACY_MAGIC:
        raise DeepSegError(f"{path}: not a PyTorch state dict (neither a zip archive nor the "
                           f"legacy torch.save format)")
    for _ in range(2):  # protocol version, system information
        _unpickle(_pickle_at(stream, path), path)
    state, storages = _unpickle(_pickle_at(stream, path), path)
    keys, _ = _unpickle(_pickle_at(stream, path), path)
    raw = {}
    for key in keys if isinstance(keys, list) else []:
        count, = struct.unpack("<q", stream.read(8).rjust(8, b"\0"))
        itemsize = np.dtype(storages[str(key)].dtype).itemsize if str(key) in storages else 1
        raw[str(key)] = stream.read(max(count, 0) * itemsize)
    return state, raw


def _pickle_at(stream: io.BytesIO, path: str) -> bytes:
    """The bytes of the one pickle that starts at the stream's position (the stream moves on)."""
    start = stream.tell()
    try:
        next(op for op, _, _ in pickletools.genops(stream) if op.name == "STOP")
    except Exception as error:
        raise DeepSegError(f"{path}: not a PyTorch state dict ({error})") from None
    return stream.getvalue()[start:stream.tell()]


def _array(path: str, key: str, tensor: _Tensor, raw: dict[str, bytes]) -> np.ndarray:
    store, dtype = tensor.storage, np.dtype(tensor.storage.dtype)
    data = raw.get(store.key, b"")[:store.count * dtype.itemsize]
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride))
    if len(data) < store.count * dtype.itemsize or min(tensor.stride, default=0) < 0 \
            or (min(tensor.shape, default=1) > 0 and last >= store.count):
        raise DeepSegError(f"{path}: the numbers of {key!r} (storage {store.key}) are missing "
                           f"or cut short")
    numbers = np.frombuffer(data, dtype=dtype)[tensor.offset:]
    strides = [s * dtype.itemsize for s in tensor.stride]
    return np.lib.stride_tricks.as_strided(numbers, tensor.shape, strides).copy()


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """{key: array} of the tensors of a PyTorch state-dict file; DeepSegError naming the file."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as error:
        raise DeepSegError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        is_zip = zipfile.is_zipfile(io.BytesIO(blob))
        state, raw = _from_zip(path, blob) if is_zip else _from_legacy(path, blob)
    except (zipfile.BadZipFile, OSError, EOFError, struct.error) as error:
        raise DeepSegError(f"{path}: not a PyTorch state dict ({error})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, _Tensor)
                                              for k, v in state.items()):
        raise DeepSegError(f"{path}: not a PyTorch state dict (no mapping of names to tensors)")
    return {key: _array(path, key, tensor, raw) for key, tensor in state.items()}

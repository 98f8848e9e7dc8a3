"""Crash-safe working files of a prediction shard (docs/crash-safety.md).

A partial is two files beside the output:

``<output>.part-i-of-N.blocks``
    an append-only log of blocks: each one layer's pixels at a raster window, zlib-compressed,
    behind a header that carries the window and CRC-32 checksums of header and payload.
    Bytes once committed are never rewritten.
``<output>.part-i-of-N.commit.json``
    the commit record: the run's settings key, how many tiles are done, how many bytes of
    the log they fill and whether the shard is complete. It is replaced atomically
    (temporary file, fsync, rename, fsync of the folder), and only after the log has been
    fsync'ed up to the bytes it names.

A rerun reads the record; with the same key (stages/predict/key.py: inputs, model, settings)
it cuts the log back to the committed length (dropping whatever a killed run appended after
its last commit) and goes on from the next tile; with another key it starts again and says
what changed. Whatever instant a run dies, the record names only durable, checksummed bytes.
The log is opened without following a symbolic link at its name (a link planted there in a
shared folder cannot redirect the write).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from ...contracts.raster import Window
from ...errors import DeepSegError, io_error
from ...io.atomic import fsync_dir, temporaries, write_text
from ...io.threads import map_in_order
from .key import mismatch

log = logging.getLogger(__name__)

MAGIC = b"DSB1"
PREFIX = struct.Struct("<4sII")  # magic, header length, CRC-32 of the header
FORMAT = 1


class Partial:
    """The working files of one shard, opened for writing (resumed when they match ``key``)."""

    def __init__(self, base: Path, key: dict[str, Any]) -> None:
        self.log = base.with_name(base.name + ".blocks")
        self.record = base.with_name(base.name + ".commit.json")
        self.key = key
        found = load_record(self.record)
        state = _state(found) if found is not None and found["key"] == key else None
        if found is not None and state is None:
            log.info(f"{self.log}: {mismatch('it', found['key'], key)}: predicting it again")
        try:
            if state is not None and _regular_size(self.log) >= state["bytes"]:
                fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
                os.ftruncate(fd, state["bytes"])
            else:
                state = None
                self.record.unlink(missing_ok=True)
                self.log.parent.mkdir(parents=True, exist_ok=True)
                self.log.unlink(missing_ok=True)  # a link at the name goes, not its target
                fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o644)
            self.handle = os.fdopen(fd, "ab")
        except OSError as exc:
            raise io_error(self.log, exc, "cannot write the prediction") from None
        self.state: dict[str, Any] = state or {"tiles": 0, "bytes": 0, "complete": False}
        self.offset: int = self.state["bytes"]

    @property
    def done(self) -> int:
        """Tiles committed."""
        return int(self.state["tiles"])

    @property
    def complete(self) -> bool:
        """Whether the shard is done."""
        return bool(self.state["complete"])

    def get(self, name: str, default: Any = None) -> Any:
        """A value saved with the last commit (e.g. a writer's row floor)."""
        return self.state.get(name, default)

    def write(self, layer: str, array: np.ndarray, window: Window) -> None:
        """Append ``(bands, rows, cols)`` pixels of ``layer`` at ``window``."""
        array = np.ascontiguousarray(array)
        payload = zlib.compress(array.tobytes(), 1)
        header = json.dumps({"layer": layer, "dtype": array.dtype.str, "shape": array.shape,
                             "window": [window.row_off, window.col_off, window.height,
                                        window.width],
                             "size": len(payload), "crc": zlib.crc32(payload)}).encode()
        try:
            self.handle.write(PREFIX.pack(MAGIC, len(header), zlib.crc32(header)))
            self.handle.write(header)
            self.handle.write(payload)
        except OSError as exc:
            raise self._failed(exc) from None
        self.offset += PREFIX.size + len(header) + len(payload)

    def commit(self, tiles: int, complete: bool = False, **values: Any) -> None:
        """Make everything written so far durable, then record it as done."""
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
        except OSError as exc:
            raise self._failed(exc) from None
        state = {**self.state, **values, "tiles": int(tiles), "bytes": self.offset,
                 "complete": bool(complete)}
        write_text(self.record, json.dumps({"format": FORMAT, "key": self.key, **state}))
        self.state = state

    def _failed(self, exc: OSError) -> DeepSegError:
        return io_error(self.log, exc, "writing the prediction failed", "free space and rerun "
                        "the same command: it resumes after the last committed tile")

    def close(self) -> None:
        try:
            self.handle.close()
        except OSError:  # an unflushed tail is not committed: a rerun drops it anyway
            pass


def _regular_size(path: Path) -> int:
    """The size of the regular file at ``path`` (-1 for none, or a link or other file)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return -1
    return info.st_size if stat.S_ISREG(info.st_mode) else -1


def load_record(path: Path) -> dict[str, Any] | None:
    """The commit record at ``path`` (with its ``key``), None when there is none readable."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "key" not in state:
        return None
    return state


def _state(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("format", "key")}


def check_complete(base: Path, key: dict[str, Any], shard: str) -> dict[str, Any]:
    """The commit record of the complete partial of ``shard`` ('i/N'); a one-line error
    saying it is missing, unfinished, or made under another key (which parts changed)."""
    found = load_record(base.with_name(base.name + ".commit.json"))
    redo = f"run 'deepseg predict --shard {shard}' first"
    if found is None:
        raise DeepSegError(f"{base}.blocks: prediction shard {shard} missing; {redo}")
    if found["key"] != key:
        what = mismatch(f"prediction shard {shard}", found["key"], key)
        raise DeepSegError(f"{base}.blocks: {what}; {redo}")
    if not found.get("complete"):
        raise DeepSegError(f"{base}.blocks: prediction shard {shard} unfinished "
                           f"({found.get('tiles', 0)} tiles committed); {redo}")
    return _state(found)


def blocks(base: Path, key: dict[str, Any], layer: str, shard: str,
           threads: int = 1) -> Iterator[tuple[Window, np.ndarray]]:
    """Yield ``(window, array)`` of ``layer`` from a complete partial, checksums verified, in
    the log's order; ``threads`` threads read, check and decompress the blocks ahead."""
    log = base.with_name(base.name + ".blocks")
    state = check_complete(base, key, shard)
    try:
        with open(log, "rb") as handle:
            decode = functools.partial(_decode, handle.fileno(), log)
            found = map_in_order(decode, _headers(handle, log, state["bytes"], layer), threads,
                                 name="deepseg-merge")
            try:
                yield from found
            finally:
                found.close()
    except OSError as exc:
        raise io_error(log, exc, "cannot read the prediction shard") from None


def _headers(handle: IO[bytes], log: Path, end: int,
             layer: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(offset of the payload, header)`` of each block of ``layer`` (the others skipped)."""
    offset = 0
    while offset < end:
        magic, size, crc = PREFIX.unpack(_exact(handle, PREFIX.size, log, offset))
        raw = _exact(handle, size, log, offset)
        if magic != MAGIC or zlib.crc32(raw) != crc:
            raise _damaged(log, offset)
        header = json.loads(raw)
        offset += PREFIX.size + size
        handle.seek(header["size"], os.SEEK_CUR)
        if header["layer"] == layer:
            yield offset, header
        offset += header["size"]


def _decode(fd: int, log: Path, block: tuple[int, dict[str, Any]]) -> tuple[Window, np.ndarray]:
    """The pixels of a block found by ``_headers`` (any thread: a positioned read)."""
    offset, header = block
    payload = os.pread(fd, header["size"], offset)
    if len(payload) != header["size"] or zlib.crc32(payload) != header["crc"]:
        raise _damaged(log, offset)
    array = np.frombuffer(zlib.decompress(payload), header["dtype"])
    return Window(*header["window"]), array.reshape(header["shape"])


def _exact(handle: IO[bytes], size: int, log: Path, offset: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise _damaged(log, offset)
    return data


def _damaged(log: Path, offset: int) -> DeepSegError:
    return DeepSegError(f"{log}: damaged block near byte {offset} (checksum mismatch); delete "
                        "this file and its .commit.json and rerun that shard's prediction")


def remove(base: Path) -> None:
    """Delete a partial's files (after its output is verified)."""
    record = base.with_name(base.name + ".commit.json")
    for path in (record, *temporaries(record), base.with_name(base.name + ".blocks")):
        path.unlink(missing_ok=True)
    fsync_dir(base.parent)

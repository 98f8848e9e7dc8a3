"""Assemble finished shard partials into an output raster through a writer plugin.

Blocks are copied one at a time (with N threads, at most 2N decompressed ahead), so nothing
is loaded whole. The output is written under a temporary name; after the writer closed it,
every block is read back through the reader plugin and compared with what was written
(CRC-32), so a disk that filled up or a GDAL error that raised nothing can never pass for a
finished raster. Only then is it fsync'ed and renamed into place.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...contracts.raster import RasterInfo, Window
from ...errors import DeepSegError, io_error
from ...io.atomic import full_disk_hint, replace_durably
from ...io.sidecars import remove_output
from ...io.threads import map_in_order
from ...styles.raster import write_raster_style
from .cover import Cover
from .partials import blocks, check_complete

if TYPE_CHECKING:
    from ...contracts.raster import RasterReader, RasterWriter

#: ``write(array (bands, rows, cols), window)``: a sink's write
Write = Callable[[np.ndarray, Window], None]
#: ``reader_for(path)``: the registry's reader for a file
ReaderFor = Callable[[Path], "RasterReader"]


def incomplete(path: Path) -> Path:
    """``name.incomplete.ext`` beside ``path``: never mistaken for a finished output."""
    return path.with_name(f"{path.stem}.incomplete{path.suffix}")


class Checked:
    """Wraps a sink's ``write``: remembers a checksum of every block written."""

    def __init__(self, write: Write) -> None:
        self._write = write
        self.blocks: list[tuple[Window, int]] = []

    def __call__(self, array: np.ndarray, window: Window) -> None:
        self._write(array, window)
        self.blocks.append((window, _crc(array)))


def _crc(array: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(array).tobytes())


def verify(path: Path, reader_for: ReaderFor, info: RasterInfo,
           blocks: Sequence[tuple[Window, int]], threads: int = 1) -> None:
    """Every block of ``blocks`` reads back from ``path`` as it was written; ``threads``
    threads read a run of consecutive blocks each, every one through its own handle."""
    step = -(-len(blocks) // max(1, threads)) or 1
    runs = [blocks[i:i + step] for i in range(0, len(blocks), step)]
    for _ in map_in_order(functools.partial(_verify_run, path, reader_for, info), runs,
                          threads, name="deepseg-verify"):
        pass


def _verify_run(path: Path, reader_for: ReaderFor, info: RasterInfo,
                blocks: Sequence[tuple[Window, int]]) -> None:
    try:
        with reader_for(path).open(path) as src:
            for window, crc in blocks:
                data = np.asarray(src.read(window)).astype(info.dtype, copy=False)
                if _crc(data.reshape(info.count, window.height, window.width)) != crc:
                    raise DeepSegError(f"{path}: {window} does not read back as written; the "
                                       "disk may be full or failing")
    except DeepSegError:
        raise
    except Exception as exc:  # GDAL/h5py errors of a truncated or damaged file
        raise DeepSegError(f"{path}: the written raster does not read back "
                           f"({' '.join(str(exc).split())}); the disk may be full") from None


def write_output(out: Path, writer: RasterWriter, reader_for: ReaderFor, info: RasterInfo,
                 fill: Callable[[Write], None], options: dict[str, Any] | None = None,
                 threads: int = 1) -> Path:
    """``fill(write)`` writes the blocks of ``out`` under its temporary name, which is then
    verified (read back through ``reader_for(path)``, a registry's), given its QGIS style (a
    class raster) and returned; ``publish`` renames it into place with its sidecars.
    ``threads``: CPU threads the writer (where it says it can use them, its
    ``threads_option``) and the check may use."""
    option = getattr(writer, "threads_option", None)
    if option and threads > 1:
        options = {option: threads, **(options or {})}
    tmp = incomplete(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with writer.create(tmp, info, **(options or {})) as sink:
            checked = Checked(sink.write)
            fill(checked)
        verify(tmp, reader_for, info, checked.blocks, threads)
        write_raster_style(tmp, info)
    except BaseException as exc:  # nothing half-written stays behind
        remove_output(tmp)
        if isinstance(exc, OSError):
            raise io_error(out, exc, "cannot write the prediction") from None
        if isinstance(exc, DeepSegError):
            raise DeepSegError(f"{exc}{full_disk_hint(out.parent)}") from None
        raise
    return tmp


def publish(outputs: list[Path]) -> list[Path]:
    """Rename verified temporaries to their final names, all together at the end."""
    finals = [final_name(tmp) for tmp in outputs]
    for tmp, out in zip(outputs, finals):
        replace_durably(tmp, out)
    return finals


def final_name(tmp: Path) -> Path:
    """The final name of a temporary output (inverse of ``incomplete``)."""
    return tmp.with_name(tmp.name.replace(".incomplete", "", 1))


@dataclass(frozen=True)
class Part:
    """One shard's partial as the assembly reads it: its files' base name, the key it must
    have been made under, its name ('i/N') and the raster rows [first, end) it owns."""

    base: Path
    key: dict[str, Any]
    shard: str
    rows: tuple[int, int]


def assemble(parts: list[Part], layer: str, writer: RasterWriter, reader_for: ReaderFor,
             out: Path, info: RasterInfo, options: dict[str, Any] | None = None,
             threads: int = 1) -> Path:
    """Copy ``layer`` of every partial (row bands of one raster) into the verified temporary
    of ``out``, each shard's blocks checked to cover its rows exactly; returns the temporary
    (see ``publish``). ``threads`` threads decompress the partials' blocks ahead of the
    writer (which gets them in the one order a single thread would write), compress (a
    writer that can) and check the written raster: the pixels are the same for any number."""
    for part in parts:
        check_complete(part.base, part.key, part.shard)

    def fill(write: Write) -> None:
        for part in parts:
            cover = Cover(*part.rows, info.width, part.shard)
            for window, array in blocks(part.base, part.key, layer, part.shard, threads):
                cover.add(window)
                write(array, window)
            cover.finish()

    return write_output(out, writer, reader_for, info, fill, options, threads)

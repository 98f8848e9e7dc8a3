"""What identifies a file's content in the key of reusable work (a store, a prediction).

:func:`fingerprint` is ``[path, size, mtime_ns, sample]``: ``sample`` is the SHA-256 of the
file's first and last MiB and of 64 KiB at each of 16 evenly spaced offsets, about 3 MiB read
whatever the size, so a 100 GB orthomosaic costs milliseconds of I/O, not the minutes a full
hash would. A new acquisition written over the old path differs in its size, its mtime or its
samples. What it cannot see: a file rewritten in place with the same size, its mtime set back
(``touch -r``) and changed only between the samples. :func:`content_hash` reads a whole file
(model weights, whose every byte matters and which are small beside the rasters).

GDAL virtual paths and URLs (``/vsicurl/``, ``s3://``) are fingerprinted by their path alone:
their content is not read here.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .gdalpaths import is_virtual

EDGE = 1 << 20  # bytes read at the start and at the end
SAMPLE = 64 << 10  # bytes read at each inner offset
SAMPLES = 16


def fingerprint(path) -> list:
    """``[path, size, mtime_ns, sample hash]`` of a local file; ``[path]`` for a virtual path
    or a missing file (a missing input fails elsewhere, with its own message)."""
    text = str(path)
    if is_virtual(text):
        return [text]
    try:
        with open(text, "rb") as handle:
            info = os.fstat(handle.fileno())
            return [text, info.st_size, info.st_mtime_ns, _sample(handle, info.st_size)]
    except FileNotFoundError:
        return [text]


def _sample(handle, size: int) -> str:
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    if size <= 2 * EDGE + SAMPLES * SAMPLE:  # small: all of it
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
        return digest.hexdigest()
    spans = [(0, EDGE), (size - EDGE, EDGE)]
    step = (size - 2 * EDGE) // (SAMPLES + 1)
    spans[1:1] = [(EDGE + step * (k + 1), SAMPLE) for k in range(SAMPLES)]
    for offset, length in spans:
        digest.update(os.pread(handle.fileno(), length, offset))
    return digest.hexdigest()


def content_hash(path) -> str:
    """SHA-256 of the whole file at ``path``."""
    digest = hashlib.sha256()
    with open(Path(path), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

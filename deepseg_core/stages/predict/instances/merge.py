"""Merging the instance outputs of prediction shards (``--shard i/N``, DESIGN §4).

Each shard stitches its tiles with ``InstanceStitcher(..., shard=True)``: ownership is
applied, duplicates are left undecided, and the owned detections go to a ``candidates``
GeoPackage in stripe (tile row) order. The merge reads all shards' candidates in chunks,
interleaves them by stripe and feeds them to one :class:`InstanceStitcher`, so duplicates
across shard boundaries are resolved exactly as in a single run, and memory holds a few
stripes, never a whole shard.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ....contracts.raster import RasterInfo
from .options import StitchOptions
from .output import WriteBlock, read_candidates
from .stitcher import InstanceStitcher


def merge_shards(shard_paths: Sequence[Path], info: RasterInfo, out_path: Path,
                 class_names: Sequence[str] | None = None, write_block: WriteBlock | None = None,
                 options: StitchOptions | None = None, chunk: int = 50_000) -> dict[str, Any]:
    """Merge shards' candidate GeoPackages into the instance GeoPackage and id raster."""
    stitcher = InstanceStitcher(info, out_path, class_names, write_block, options)
    streams = [read_candidates(path, chunk=chunk) for path in shard_paths]
    for stripe, columns in heapq.merge(*streams, key=lambda item: item[0]):
        stitcher.add_candidates(stripe, columns)
    return {**stitcher.finish(), "shards": len(shard_paths)}

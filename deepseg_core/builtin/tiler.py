"""Built-in tiler: a regular grid of square tiles with overlap, and the core each tile owns.

Along each axis the tile origins are 0, stride, 2*stride, ... (stride = tilesize - overlap) and
the last origin snaps to ``size - tilesize`` so the last tile ends exactly at the raster edge.
An axis shorter than a tile gets one tile at 0 reaching past the edge (padding). The tiles
are a :class:`deepseg_core.geo.grid.TileGrid`: a sequence computed from the origins, so 20
million tiles cost two lists of a few thousand origins. The cores that tiles own for prediction come
from :func:`deepseg_core.geo.tiling.tile_cores`.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from deepseg_core import hookimpl
from deepseg_core.errors import DeepSegError

from ..geo.grid import TileGrid

if TYPE_CHECKING:
    from ..plugins.registry import Registry


def _check(width: Any, height: Any, tilesize: Any, overlap: Any) -> tuple[int, int, int, int]:
    given = {"width": width, "height": height, "tilesize": tilesize, "overlap": overlap}
    values: dict[str, int] = {}
    for name, value in given.items():
        if isinstance(value, bool):
            raise DeepSegError(f"grid tiler: {name} must be an integer, got {value!r}")
        try:
            values[name] = operator.index(value)
        except TypeError:
            raise DeepSegError(f"grid tiler: {name} must be an integer, got {value!r}") from None
    width, height, tilesize, overlap = values.values()
    if tilesize <= 0:
        raise DeepSegError(f"grid tiler: tilesize must be positive, got {tilesize}")
    if not 0 <= overlap < tilesize:
        raise DeepSegError(f"grid tiler: overlap must be >= 0 and smaller than tilesize "
                           f"({tilesize}), got {overlap}")
    if width <= 0 or height <= 0:
        raise DeepSegError(f"grid tiler: the raster must not be empty, got {width} x {height}")
    return width, height, tilesize, overlap


def grid_origins(size: int, tilesize: int, overlap: int) -> list[int]:
    """Tile origins along one axis of ``size`` pixels (last one snapped to the edge)."""
    if size <= tilesize:
        return [0]
    return list(range(0, size - tilesize, tilesize - overlap)) + [size - tilesize]


def grid_tiles(width: int, height: int, tilesize: int, overlap: int) -> TileGrid:
    """Square tiles covering a ``height`` x ``width`` raster, row-major."""
    width, height, tilesize, overlap = _check(width, height, tilesize, overlap)
    return TileGrid.square(grid_origins(height, tilesize, overlap),
                       grid_origins(width, tilesize, overlap), tilesize)


@hookimpl(tryfirst=True)  # built-ins register first: others may override
def deepseg_register_tilers(registry: Registry) -> None:
    registry.add_tiler("grid", grid_tiles)

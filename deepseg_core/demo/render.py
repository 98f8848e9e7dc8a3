"""Rendering of the demo scene's geometry: red, green, blue and NIR as 0..255 reflectances.

Ground is grass and bare soil in patches; water is dark with almost no NIR; vegetation is
bright in NIR. Sunlit sides are brighter, and buildings and trees cast shadows away from
the sun. Shapes are burned at pixel centres, as dataprep rasterizes their labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio.features
from affine import Affine
from shapely import affinity

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

SUN = np.array([-0.57, 0.82])  # towards the sun: north-west, as at noon in New Zealand
GRASS, SOIL = (80, 112, 58, 175), (138, 116, 88, 100)  # (red, green, blue, NIR)
WATER, ROAD, TREE = (24, 44, 58, 12), (118, 118, 116, 92), (48, 84, 42, 205)
ROOFS = ((150, 62, 48, 72), (112, 114, 118, 84), (62, 66, 76, 52), (178, 176, 168, 150),
         (70, 104, 118, 64))
SHADOW = (0.45, 0.48, 0.58, 0.40)  # skylight keeps shadows bluer


def smooth_noise(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """Unit-variance noise varying over about ``cell`` pixels (smoothstep-interpolated grid)."""
    n = int(size / cell) + 2
    coarse = rng.standard_normal((n, n)).astype(np.float32)
    t = (np.arange(size) + 0.5) / cell
    i = t.astype(int)
    f = t - i
    f = (f * f * (3 - 2 * f)).astype(np.float32)
    rows = coarse[i] * (1 - f)[:, None] + coarse[i + 1] * f[:, None]
    return rows[:, i] * (1 - f) + rows[:, i + 1] * f


def _burn(geoms: Sequence[Any], size: int, transform: Affine) -> np.ndarray:
    """1-based index of the last geometry covering each pixel centre, 0 elsewhere."""
    if not geoms:
        return np.zeros((size, size), np.int32)
    return rasterio.features.rasterize(zip(geoms, range(1, len(geoms) + 1)), (size, size),
                                       transform=transform, dtype="int32")


def _paint(img: np.ndarray, ids: np.ndarray, colours: ArrayLike,
           shade_of: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Paint the pixels of each shape with its (4, n) colour times ``shade_of(rows, cols, k)``."""
    rr, cc = np.nonzero(ids)
    k = ids[rr, cc] - 1
    img[:, rr, cc] = np.asarray(colours, np.float32)[:, k] * shade_of(rr, cc, k)


def render(rng: np.random.Generator, size: int, resolution: float, water: Any, roads: Any,
           buildings: Sequence[Any], houses: np.ndarray, trees: Sequence[Any],
           crowns: np.ndarray) -> np.ndarray:
    """The (4, size, size) uint8 image of the scene's geometry (metres from the lower left)."""
    extent = size * resolution
    transform = Affine(resolution, 0, 0, 0, -resolution, extent)
    mix = 1 / (1 + np.exp(-2.5 * smooth_noise(rng, size, 120)))  # 60 m grass and soil patches
    img = (np.array(GRASS, np.float32)[:, None, None] * mix
           + np.array(SOIL, np.float32)[:, None, None] * (1 - mix))
    img *= 1 + 0.08 * smooth_noise(rng, size, 16) + 0.05 * smooth_noise(rng, size, 3)
    wobble = 1 + 0.04 * smooth_noise(rng, size, 8)
    for geom, colour in ((water, WATER), (roads, ROAD)):
        ids = _burn([geom], size, transform)
        _paint(img, ids, np.array(colour)[:, None], lambda rr, cc, k: wobble[rr, cc])
    shadows = ([affinity.translate(b, *(-SUN * h * 0.7)) for b, h in zip(buildings, houses[:, 4])]
               + [affinity.translate(t, *(-SUN * r * 1.1)) for t, r in zip(trees, crowns[:, 2])])
    img[:, _burn(shadows, size, transform) > 0] *= np.array(SHADOW, np.float32)[:, None]

    def centre_offset(rr: np.ndarray, cc: np.ndarray, k: np.ndarray,
                      table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (cc + 0.5) * resolution - table[k, 0], extent - (rr + 0.5) * resolution - table[k, 1]

    def gable(rr: np.ndarray, cc: np.ndarray, k: np.ndarray) -> np.ndarray:
        # the roof plane facing the sun is the brighter one
        du, dv = centre_offset(rr, cc, k, houses)
        side = np.sign(du * houses[k, 2] + dv * houses[k, 3])
        return 1 + 0.22 * side * (houses[k, 2] * SUN[0] + houses[k, 3] * SUN[1])

    roofs = np.array(ROOFS, np.float32)[rng.integers(len(ROOFS), size=len(buildings))].T
    _paint(img, _burn(buildings, size, transform), roofs * rng.uniform(0.9, 1.1, len(buildings)),
           gable)
    leaves = smooth_noise(rng, size, 2.5)

    def crown(rr: np.ndarray, cc: np.ndarray, k: np.ndarray) -> np.ndarray:
        # a lit dome with leaf-clump texture
        du, dv = (d / crowns[k, 2] for d in centre_offset(rr, cc, k, crowns))
        return (1 + 0.35 * (du * SUN[0] + dv * SUN[1]) - 0.3 * (du**2 + dv**2)) * (
            1 + 0.12 * leaves[rr, cc])

    tones = (np.array(TREE, np.float32)[:, None] * rng.uniform(0.8, 1.2, len(trees))
             * rng.uniform(0.92, 1.08, (4, len(trees))))
    _paint(img, _burn(trees, size, transform), tones, crown)
    img += rng.normal(0, 2.0, img.shape).astype(np.float32)  # sensor noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)

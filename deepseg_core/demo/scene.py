"""A synthetic, plausible 0.5 m NZTM scene (red, green, blue, NIR) with exact vector labels.

The geometry comes first, in metres from the scene's lower-left corner: a river and a lake,
straight and curved roads, buildings facing the roads, tree crowns in clumps. The image is
rendered from that geometry (burned at pixel centres, as dataprep rasterizes labels), and the
GeoPackage holds the generating shapes themselves, never polygons traced from pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box

from .render import render

Geometry = Any  # a shapely geometry (shapely ships no types)

CRS = "EPSG:2193"  # NZTM
RESOLUTION = 0.5
ORIGIN = (1_795_000.0, 5_818_000.0)  # top-left corner, near Hamilton (Waikato)
BANDS = ("red", "green", "blue", "nir")
CLASSES = (("background", "#f0e6a0"), ("tree", "#1a9641"), ("building", "#d7191c"),
           ("road", "#9e9e9e"), ("water", "#2b83ba"))


@dataclass
class Scene:
    """Where a generated scene was written, and how many label polygons of each class."""

    image: Path
    labels: Path
    size: int
    counts: dict[str, int]


def _water(rng: np.random.Generator, extent: float) -> Geometry:
    """A meandering river across the scene and a lobed lake."""
    u = np.linspace(-0.2 * extent, 1.2 * extent, 90)
    v = rng.uniform(0.25, 0.75) * extent + 0.12 * extent * np.sin(
        2 * np.pi * u / (extent * rng.uniform(0.6, 1.2)) + rng.uniform(0, 2 * np.pi))
    river = LineString(np.column_stack([u, v])).buffer(rng.uniform(4, 7), cap_style="flat")
    river = affinity.rotate(river, rng.uniform(0, 180), origin=(extent / 2, extent / 2))
    a = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    r = extent * rng.uniform(0.06, 0.1) * (1 + sum(
        rng.uniform(0.05, 0.15) * np.cos(k * a + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)))
    cx, cy = rng.uniform(0.15, 0.85, 2) * extent
    return shapely.union(river, Polygon(np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)])))


def _roads(rng: np.random.Generator, extent: float) -> tuple[list[LineString], Geometry]:
    """Centre lines (every other one curved) and their union, 5 to 7 m wide."""
    lines = []
    for k in range(2 + int(extent // 250)):
        angle = rng.uniform(0, np.pi)
        along, normal = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle),
                                                                            np.cos(angle)])
        s = np.linspace(-extent, extent, 80)[:, None]
        bend = rng.uniform(-0.6, 0.6) / extent if k % 2 else 0.0
        lines.append(LineString(rng.uniform(0.15, 0.85, 2) * extent + s * along
                                + bend * s**2 * normal))
    roads = shapely.union_all([line.buffer(rng.uniform(2.5, 3.5), cap_style="flat")
                               for line in lines])
    return lines, roads


def _buildings(rng: np.random.Generator, extent: float, lines: list[LineString],
               blocked: Geometry) -> tuple[list[Polygon], np.ndarray]:
    """Rectangles (mostly facing a road), clear of roads, water and each other."""
    shapely.prepare(blocked)
    want = max(2, int(extent**2 / 3500))
    placed: list[Polygon] = []
    kept: list[tuple[float, ...]] = []
    for _ in range(want * 40):
        if len(placed) >= want:
            break
        width, depth = rng.uniform(8, 18), rng.uniform(7, 12)
        if rng.random() < 0.75:
            line = lines[rng.integers(len(lines))]
            s = rng.uniform(0, line.length - 1)
            (x0, y0), (x1, y1) = line.interpolate(s).coords[0], line.interpolate(s + 1).coords[0]
            angle = np.arctan2(y1 - y0, x1 - x0)
            side = rng.choice([-1, 1]) * (3.5 + depth / 2 + rng.uniform(2, 8))
            centre = np.array([x0 - side * np.sin(angle), y0 + side * np.cos(angle)])
        else:
            angle, centre = rng.uniform(0, np.pi), rng.uniform(0, extent, 2)
        rect = affinity.rotate(box(-width / 2, -depth / 2, width / 2, depth / 2), angle,
                               origin=(0, 0), use_radians=True)
        rect = affinity.translate(rect, *centre)
        if (not (0 < centre).all() or not (centre < extent).all()
                or blocked.intersects(rect.buffer(1.5))
                or (placed and shapely.intersects(np.array(placed), rect.buffer(2)).any())):
            continue
        placed.append(rect)
        kept.append((*centre, -np.sin(angle), np.cos(angle), rng.uniform(3, 7)))
    return placed, np.array(kept).reshape(-1, 5)  # cx, cy, ridge normal x/y, height


def _trees(rng: np.random.Generator, extent: float,
           blocked: Geometry) -> tuple[list[Polygon], np.ndarray]:
    """Crowns of radius 2-8 m, mostly in clumps, clear of buildings, roads and water."""
    shapely.prepare(blocked)
    want = max(8, int(extent**2 / 700))
    clumps = rng.uniform(0, extent, (max(2, want // 15), 2))
    crowns = np.zeros((0, 3))  # cx, cy, radius
    for _ in range(want * 20):
        if len(crowns) >= want:
            break
        r = 2 + 6 * rng.beta(1.6, 3.0)
        c = (clumps[rng.integers(len(clumps))] + rng.normal(0, 10, 2) if rng.random() < 0.7
             else rng.uniform(0, extent, 2))
        if (not (0 < c).all() or not (c < extent).all()
                or (np.hypot(*(crowns[:, :2] - c).T) < 0.75 * (crowns[:, 2] + r)).any()
                or blocked.intersects(Point(c).buffer(r + 0.5))):
            continue
        crowns = np.vstack([crowns, [*c, r]])
    return [Point(x, y).buffer(r, quad_segs=12) for x, y, r in crowns], crowns


def make_scene(folder: str | Path, size: int = 1024, seed: int = 0) -> Scene:
    """Generate the scene into ``folder``: scene.tif (tiled GeoTIFF) and labels.gpkg."""
    import geopandas as gpd

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    extent = size * RESOLUTION
    water = _water(rng, extent)
    lines, roads = _roads(rng, extent)
    water = water.difference(roads)  # roads cross the river on bridges
    buildings, houses = _buildings(rng, extent, lines, shapely.union(water, roads))
    trees, crowns = _trees(rng, extent, shapely.union_all([water, roads, *buildings]))
    image = render(rng, size, RESOLUTION, water, roads, buildings, houses, trees, crowns)

    x0, y0 = ORIGIN
    frame = box(0, 0, extent, extent)
    shapes = [("water", water), ("road", roads)] + [("building", b) for b in buildings] + [
        ("tree", t) for t in trees]
    geoms = shapely.transform(shapely.intersection(np.array([g for _, g in shapes]), frame),
                              lambda xy: xy + [x0, y0 - extent])
    labels = gpd.GeoDataFrame({"class": [c for c, _ in shapes]}, geometry=geoms, crs=CRS)
    labels = labels.explode(index_parts=False)
    labels = labels[~labels.geometry.is_empty & (labels.geometry.geom_type == "Polygon")]
    labels_path, image_path = folder / "labels.gpkg", folder / "scene.tif"
    labels_path.unlink(missing_ok=True)
    labels.to_file(labels_path, layer="labels", driver="GPKG")
    block = 256 if size > 256 else 128
    profile = dict(driver="GTiff", width=size, height=size, count=len(BANDS), dtype="uint8",
                   crs=CRS, transform=Affine(RESOLUTION, 0, x0, 0, -RESOLUTION, y0),
                   tiled=True, blockxsize=block, blockysize=block, compress="deflate")
    with rasterio.open(image_path, "w", **profile) as dst:
        dst.write(image)
        dst.descriptions = BANDS
    counts = labels["class"].value_counts().to_dict()
    return Scene(image_path, labels_path, size, {c: int(counts.get(c, 0)) for c, _ in CLASSES[1:]})

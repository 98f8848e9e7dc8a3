"""Training scenes: separate image stacks on one pixel lattice, each tiled on its own.

An experiment's ``scenes`` (or its one ``images`` grid) are placed on the lattice of the
first scene's grid (its CRS, pixel size and origin), so tile rows and columns are numbered
in one frame and tiles of different scenes never share pixels. Only each scene's own extent
is tiled: the space between scenes costs nothing, however far apart they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from affine import Affine

from ..errors import DeepSegError
from .stack import Grid, ImageStack

if TYPE_CHECKING:
    from ..config.base import ImageSource
    from ..config.schema import Experiment, Labels
    from ..plugins.registry import Registry


@dataclass
class Scene:
    """One training area: its sources, labels, grid and offset in the experiment's frame."""

    index: int
    name: str
    images: list[ImageSource]
    labels: Labels
    key: str  # the config key of its images, for messages
    grid: Grid | None = None
    row_off: int = 0
    col_off: int = 0

    @property
    def placed_grid(self) -> Grid:
        """The scene's grid, which :func:`place_scenes` gives it."""
        assert self.grid is not None, "place_scenes() gives every scene its grid"
        return self.grid

    def record(self) -> dict[str, Any]:
        """What the store keeps of the scene (attrs ``scenes``)."""
        grid = self.placed_grid
        return {"name": self.name, "row_off": self.row_off, "col_off": self.col_off,
                "width": grid.width, "height": grid.height,
                "transform": list(grid.transform.to_gdal())}


def training_scenes(exp: Experiment) -> list[Scene]:
    """The experiment's scenes (``images`` alone is one scene); DeepSegError for a scene
    without labels."""
    if not exp.scenes:
        if exp.labels is None:
            raise DeepSegError(f"{exp.source}: labels: dataprep needs a 'labels' section")
        return [Scene(0, "scene0", exp.images or [], exp.labels, "images")]
    scenes = []
    names = [s.name or f"scene{i}" for i, s in enumerate(exp.scenes)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DeepSegError(f"{exp.source}: scenes: names must be unique; given twice: "
                           f"{', '.join(twice)}")
    for i, (scene, name) in enumerate(zip(exp.scenes, names)):
        labels = scene.labels or exp.labels
        if labels is None:
            raise DeepSegError(f"{exp.source}: scenes[{i}].labels: scene {name!r} has no "
                               "labels and the experiment gives no shared 'labels'")
        scenes.append(Scene(i, name, scene.images, labels, f"scenes[{i}].images"))
    return scenes


def place_scenes(exp: Experiment, registry: Registry, scenes: list[Scene]) -> Grid:
    """Give every scene its grid on the first scene's lattice and its offset in the common
    frame; returns the frame (the union of the scenes, a bounding box only)."""
    first: Grid | None = None
    grids = []
    for scene in scenes:
        crs, res = (exp.crs, exp.resolution) if first is None else (
            first.crs, exp.resolution or abs(first.transform.a))
        with ImageStack(scene.images, registry, crs, res, key=scene.key) as stack:
            natural = stack.grid
        if first is None:
            first = natural
        scene.grid = _snap(natural, first)
        grids.append(scene.grid)
    assert first is not None, "training_scenes() gives at least one scene"
    t = first.transform
    rows = [round((t.f - g.transform.f) / -t.e) for g in grids]
    cols = [round((g.transform.c - t.c) / t.a) for g in grids]
    top, left = min(rows), min(cols)
    for scene, row, col in zip(scenes, rows, cols):
        scene.row_off, scene.col_off = row - top, col - left
    width = max(s.col_off + g.width for s, g in zip(scenes, grids))
    height = max(s.row_off + g.height for s, g in zip(scenes, grids))
    return Grid(first.crs, t @ Affine.translation(left, top), width, height)


def _snap(grid: Grid, lattice: Grid) -> Grid:
    """``grid``'s extent on the pixels of ``lattice`` (same CRS; origin moved < 1/2 pixel)."""
    if grid is lattice:
        return grid
    t, g = lattice.transform, grid.transform
    x0, y0 = g @ (0, 0)
    x1, y1 = g @ (grid.width, grid.height)
    col, row = round((x0 - t.c) / t.a), round((y0 - t.f) / t.e)
    width = max(1, round(abs(x1 - x0) / abs(t.a)))
    height = max(1, round(abs(y1 - y0) / abs(t.e)))
    return Grid(lattice.crs, t @ Affine.translation(col, row), width, height)


def store_scenes(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """The scenes recorded in a store's attrs (``row_off``, ``col_off``, ``width``,
    ``height``); one frame-wide scene for stores written before scenes."""
    return attrs.get("scenes") or [{"name": "scene0", "row_off": 0, "col_off": 0,
                                    "width": attrs["width"], "height": attrs["height"]}]

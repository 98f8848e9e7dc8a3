"""What one prediction run does: the grid, tiles and cores, the shards, the route.

``Plan`` opens the image stack of the run's :class:`~.settings.Settings` and lays the tile
grid over it; ``Shard`` is one part of it, ``Route`` what the kind of model changes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...contracts.raster import RasterInfo
from ...data.stack import ImageStack, same_crs
from ...errors import DeepSegError
from ...geo.grid import Stripe, Take, row_origins, select, striped
from ...geo.tiling import tile_cores
from .key import Key, prediction_key, publish_key
from .settings import Settings

if TYPE_CHECKING:
    from ...config.schema import Experiment
    from ...contracts.raster import Window
    from ...inference.stream import TileRunner
    from ...models.folder import ModelInfo, TrainedModel
    from ...plugins.registry import Registry


@dataclass(frozen=True)
class Shard:
    """Shard ``i`` of ``n``: its tiles (owned rows plus context rows it only reads; blending
    takes them stripe by stripe, ``stripes``), each tile's core at the same position, and the
    raster rows [first, end) it owns."""

    i: int
    n: int
    windows: Sequence[Window]
    cores: Sequence[Window]
    rows: tuple[int, int]
    stripes: tuple[Stripe, ...] = ()

    @property
    def label(self) -> str:
        """What its progress bar says."""
        return f"predict shard {self.i}/{self.n}" if self.n > 1 else "predict"


@dataclass(frozen=True)
class Route:
    """What differs between semantic and instance prediction, chosen once per run: how a
    shard's tiles are predicted into its working files, how the shards become the outputs,
    and how the shards' files are deleted after."""

    predict_shard: Callable[[Plan, Shard, TileRunner], Path]  # -> the shard's working file
    assemble: Callable[[Plan, Registry, int], list[Path]]  # (n shards) -> published outputs
    remove_shards: Callable[[Plan, int], None]


class Plan:
    """The grid, tiles, cores and shards of a run, and the output it describes."""

    def __init__(self, settings: Settings, registry: Registry, trained: TrainedModel) -> None:
        """``trained``: the model (deepseg_core.models.folder.TrainedModel) to predict with."""
        s = self.settings = settings
        info = trained.info
        self.stack = ImageStack(s.images, registry, s.crs, s.resolution, key=s.images_key)
        try:
            self._check(info)
        except BaseException:
            self.stack.close()
            raise
        grid = self.stack.grid
        self.windows = registry.get("tiler", s.tiler)(grid.width, grid.height, s.tilesize,
                                                      s.overlap)
        self.cores = tile_cores(self.windows, grid.width, grid.height)
        dtype = "uint8" if len(s.classes) < 255 else "uint16"
        self.nodata = 255 if dtype == "uint8" else 65535
        self.info = RasterInfo(grid.width, grid.height, 1, dtype, grid.crs, grid.transform,
                               self.nodata, ("class",), s.colours, s.classes, True)
        self.key: Key = prediction_key(s, self.stack, trained)
        self.publish_key: Key = publish_key(s, self.key)

    def _check(self, info: ModelInfo) -> None:
        s, grid = self.settings, self.stack.grid
        if self.stack.nbands != info.nbands:
            raise DeepSegError(f"{s.source}: the prediction images stack to "
                               f"{self.stack.nbands} bands, the model takes {info.nbands}")
        if info.crs and not same_crs(grid.crs, info.crs):
            raise DeepSegError(f"{s.source}: the prediction grid's CRS differs from the "
                               "training CRS; set 'crs' (and 'reproject: true' on the images)")
        res = abs(grid.transform.a)
        if info.resolution and not 0.67 < res / info.resolution < 1.5:
            warnings.warn(f"prediction resolution {res} is far from the training resolution "
                          f"{info.resolution}", stacklevel=3)

    def shard(self, i: int, n: int) -> Shard:
        """Shard i of n: a band of whole tile rows; blending, also every tile row that reaches
        into its rows, which it reads but does not own (two where the last row snaps to the
        raster edge), and vertical stripes of ``stripe_width`` px, each with every tile that
        reaches into it. Its tiles and cores are views of the plan's (geo.grid)."""
        s, width = self.settings, self.info.width
        starts = row_origins(self.windows)
        lo, hi = len(starts) * i // n, len(starts) * (i + 1) // n
        if lo == hi:
            return Shard(i, n, [], [], (0, 0))
        owned = select(self.windows, starts[lo:hi])
        first, last = self.cores[owned[0]], self.cores[owned[-1]]
        rows = (first.row_off, last.row_off + last.height)
        band = [r for r in starts if r < rows[1] and r + s.tilesize > rows[0]] if s.blend \
            else starts[lo:hi]
        tiles, stripes = striped(self.windows, band, width, s.stripe_width if s.blend else width)
        return Shard(i, n, Take(self.windows, tiles), Take(self.cores, tiles), rows, stripes)

    def partial_base(self, i: int, n: int) -> Path:
        """The name a shard's working files start with."""
        out = self.settings.output
        return out.with_name(f"{out.name}.part-{i:04d}-of-{n:04d}")

    def shard_key(self, i: int, n: int) -> Key:
        """The settings key of shard i of n (its partial is resumed only with the same)."""
        return {**self.key, "shard": [i, n]}

    def shards_found(self) -> int | None:
        """N of the shards found beside the output, None when there are none."""
        out = self.settings.output
        found = sorted(out.parent.glob(f"{out.name}.part-*-of-*.*"))
        return int(found[0].name.rsplit("-of-", 1)[1].split(".")[0]) if found else None

    def count_shards(self) -> int:
        """N of the shards found beside the output (for ``merge``), an error when none."""
        n = self.shards_found()
        if n is None:
            out = self.settings.output
            raise DeepSegError(f"no prediction shards beside {out}: run 'deepseg predict "
                               "--shard i/N' first")
        return n

    def probabilities_info(self) -> RasterInfo:
        """The probabilities raster: one band per class."""
        bands = len(self.settings.classes)
        dtype = self.settings.probabilities
        return self.info.with_(count=bands, dtype=dtype, colormap=None, class_names=None,
                               thematic=False,
                               nodata=None if dtype == "uint8" else float("nan"),
                               descriptions=self.settings.classes)

    def close(self) -> None:
        self.stack.close()


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/N' -> (i, N); None -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise DeepSegError(f"--shard: expected 'i/N' such as 0/4, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise DeepSegError(f"--shard: {text!r} needs 0 <= i < N")
    return i, n



def output_path(exp: Experiment) -> Path:
    """Where the experiment's prediction raster goes."""
    return Settings.of(exp).output

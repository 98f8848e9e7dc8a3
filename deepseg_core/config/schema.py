"""The experiment.yaml schema: every key, its type, default and meaning.

Names follow the original DeepSeg tool (segmentation_type, stages, resolution, tilesize,
overlap, nbands, epochs, learning_rate). docs/experiment.md is tested against this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from ..contracts.raster import parse_colour
from .base import ImageSource, Named, Strict
from .hpc import HPC
from .safety import name_problem, one_line
from .sections import CrossVal, Predict, Store, Training

STAGES: tuple[Literal["dataprep", "train", "crossval", "predict"], ...] = (
    "dataprep", "train", "crossval", "predict")
#: tile side bounds: below 16 px a raster becomes millions of tiles (the window list alone can
#: exhaust memory); above 8192 px one tile (and one training batch) outgrows any GPU
TILESIZE = (16, 8192)
#: values (px x px x bands) one tile may hold: one chunk of the HDF5 store, whose limit is
#: 4 GiB, even at 8 bytes a value
TILE_VALUES = 2**28


class ClassSpec(Strict):
    name: str = Field(description="class name")
    color: str | list[int] = Field("#808080", description="'#rrggbb' or [r, g, b]")
    value: int | str | None = Field(
        None, description="value of this class in the label source (default: its index); for "
                          "vector labels a value of the class field, or a layer name")

    @field_validator("color")
    @classmethod
    def _colour(cls, value):
        parse_colour(value)  # a ValueError names the expected forms
        return value


class Labels(Strict):
    path: str | None = Field(None, description="vector labels (GeoPackage, Shapefile, GeoJSON)")
    layers: list[str] | None = Field(None, description="layers to read (default: all)")
    class_field: str | None = Field(
        None, description="attribute holding the class; None: the class is the layer name")
    raster: str | None = Field(None, description="label raster instead of vectors (nearest)")
    all_touched: bool = Field(False, description="rasterize every pixel a polygon touches "
                                                 "(False: pixels whose centre is inside)")
    outside: Literal["background", "ignore"] = Field(
        "background", description="pixels outside every label: class 0 or the ignore label")
    min_labelled: float = Field(0.0, ge=0, le=1, description="skip tiles with a smaller "
                                                              "fraction of labelled pixels")

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.path) == bool(self.raster):
            raise ValueError("give exactly one of 'path' (vectors) or 'raster'")
        return self


class Scene(Strict):
    """One training area: its own image stack (the same bands) and labels, tiled on its own."""

    name: str | None = Field(None, description="scene name (default: scene<index>)")
    images: list[ImageSource] = Field(description="this scene's sources, stacked band-wise "
                                                  "like 'images'")
    labels: Labels | None = Field(None, description="this scene's labels (default: the "
                                                    "experiment's labels, shared by scenes)")

    @field_validator("images", mode="before")
    @classmethod
    def _images(cls, value):
        items = value if isinstance(value, list) else [value]
        return [{"path": v} if isinstance(v, str) else v for v in items]


class Experiment(Strict):
    name: str | None = Field(None, description="experiment name (default: the yaml file "
                             "stem): letters, digits, '.', '_' and '-'; the folder "
                             "<workdir>/<name>/ and the Slurm job names")
    workdir: str = Field(".", description="outputs go to <workdir>/<name>/")
    segmentation_type: Literal["semantic", "instance"] = Field(
        "semantic", description="class per pixel, or one id per object (Mask R-CNN)")
    stages: list[Literal["dataprep", "train", "crossval", "predict"]] = Field(
        list(STAGES), description="stages that 'deepseg run' runs, in order")
    crs: str | None = Field(None, description="grid CRS (default: the first image's)")
    resolution: float | None = Field(None, gt=0, description="pixel size in CRS units "
                                                             "(default: the first image's)")
    tilesize: int = Field(256, ge=TILESIZE[0], le=TILESIZE[1], description="tile side in "
                          "pixels; a model may ask for a multiple (U-Net: of 2^depth); "
                          "tilesize x tilesize x nbands at most 2^28 values")
    overlap: int = Field(32, ge=0, description="overlap between neighbouring tiles in pixels, "
                                               "at most half the tilesize")
    nbands: int = Field(gt=0, description="stacked band count of the images")
    epochs: int = Field(10, ge=1, description="training epochs")
    learning_rate: float = Field(1e-3, gt=0, description="optimizer learning rate")
    images: list[ImageSource] | None = Field(
        None, description="sources stacked band-wise onto one grid: the one training scene "
                          "(default with 'scenes': the first scene's images, e.g. for predict)")
    scenes: list[Scene] | None = Field(
        None, description="training areas anywhere in the CRS, each tiled on its own (never "
                          "the space between them); instead of one 'images' grid")
    labels: Labels | None = Field(None, description="training labels (with 'scenes': shared "
                                                     "by the scenes that give none)")
    classes: list[ClassSpec] = Field(description="classes; index 0 is background")
    ignore_label: int = Field(255, ge=0, description="label value excluded from loss/metrics")
    padding: bool = Field(True, description="pad rasters smaller than a tile (as nodata)")
    tiler: str = Field("grid", description="registered tiler")
    folds: int = Field(5, ge=1, description="spatial folds")
    fold_by: Literal["tiles", "scenes"] = Field(
        "tiles", description="folds balanced over tiles within every scene, or whole scenes "
                             "to folds (at most as many folds as scenes)")
    store: Store = Field(default_factory=Store, description="the HDF5 tile store")
    model: Named = Field(description="registered model name and its parameters")
    training: Training = Field(default_factory=Training, description="training settings")
    augmentation: list[Named] = Field(default_factory=lambda: [Named(name="flips")],
                                      description="augmenter plugins applied in order")
    crossval: CrossVal = Field(default_factory=CrossVal, description="cross-validation")
    predict: Predict = Field(default_factory=Predict, description="prediction settings")
    hpc: HPC = Field(default_factory=HPC, description="Slurm settings (docs/cluster.md)")
    backend: Literal["tensorflow", "jax"] | None = Field(
        None, description="Keras backend (set before Keras starts); default: KERAS_BACKEND, "
        "else Keras' keras.json, else tensorflow")

    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The experiment.yaml this was loaded from."""
        return self._source

    @property
    def outdir(self) -> Path:
        """``<workdir>/<name>``: where every output of the experiment goes."""
        return Path(self.workdir) / (self.name or "experiment")

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @field_validator("name")
    @classmethod
    def _name(cls, value):
        why = None if value is None else name_problem(value)
        if why:
            raise ValueError(why)
        return value

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value):
        return one_line(value)

    @field_validator("crs")
    @classmethod
    def _crs(cls, value):
        if value is None:
            return value
        import rasterio
        from rasterio.crs import CRS
        from rasterio.errors import CRSError

        try:
            with rasterio.Env():  # PROJ's complaint goes to rasterio's logger, not stderr
                CRS.from_user_input(value)
        except CRSError as exc:
            reason = str(exc).split("PROJ:")[0].strip().rstrip(".") or "unknown"
            raise ValueError(f"{value!r} is not a CRS PROJ knows ({reason}); expected e.g. "
                             "'EPSG:2193' or a WKT string") from None
        return value

    @field_validator("stages", mode="before")
    @classmethod
    def _stages(cls, value):
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("images", mode="before")
    @classmethod
    def _images(cls, value):
        if value is None:
            return value
        items = value if isinstance(value, list) else [value]
        return [{"path": v} if isinstance(v, str) else v for v in items]

    @model_validator(mode="before")
    @classmethod
    def _images_or_scenes(cls, data):
        if isinstance(data, dict) and data.get("images") is None:
            scenes = data.get("scenes")
            if not scenes:
                raise ValueError("give 'images' (one training scene) or 'scenes'")
            if isinstance(scenes, list) and isinstance(scenes[0], dict) and "images" in scenes[0]:
                data = {**data, "images": scenes[0]["images"]}
        return data

    @field_validator("scenes")
    @classmethod
    def _scenes(cls, value):
        if value is not None and not value:
            raise ValueError("needs at least one scene")
        return value

    @field_validator("overlap")
    @classmethod
    def _overlap(cls, value, info):
        tilesize = info.data.get("tilesize")  # absent when tilesize itself is invalid
        if tilesize is not None and 2 * value > tilesize:  # else tiles multiply without bound
            raise ValueError(f"overlap ({value}) must be at most half the tilesize "
                             f"({tilesize} / 2 = {tilesize // 2}): each pixel in at most 4 tiles")
        return value

    @field_validator("nbands")
    @classmethod
    def _tile_values(cls, value, info):
        tilesize = info.data.get("tilesize")
        if tilesize is not None and tilesize * tilesize * value > TILE_VALUES:
            raise ValueError(f"a tile of {tilesize} x {tilesize} px x {value} bands holds "
                             f"{tilesize * tilesize * value:,} values, more than the "
                             f"{TILE_VALUES:,} one tile of the store may hold; use a smaller "
                             "tilesize")
        return value

    @field_validator("classes")
    @classmethod
    def _classes(cls, value):
        if len(value) < 2:
            raise ValueError("needs at least 2 classes (index 0 is background)")
        names = [c.name for c in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"class names must be unique; given twice: {', '.join(twice)}")
        return value

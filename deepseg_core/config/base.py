"""The building blocks of the experiment schema: strict models, named plugins, image sources."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.types import PositiveInt


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Named(Strict):
    """A registered name plus its parameters: ``{name: unet64, filters: 8}`` or just ``unet64``."""

    name: str = Field(description="registered plugin name")
    params: dict[str, Any] = Field(default_factory=dict, description="plugin parameters, "
                                   "written beside the name: {name: unet64, filters: 8}")

    @model_validator(mode="before")
    @classmethod
    def _split(cls, value):
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "params" not in value:
            rest = {k: v for k, v in value.items() if k != "name"}
            return {**({"name": value["name"]} if "name" in value else {}), "params": rest}
        return value


class ImageSource(Strict):
    path: str | list[str] = Field(description="raster file, glob, or files forming a mosaic")
    bands: list[PositiveInt] | None = Field(None, description="1-based bands (default: all)")
    resampling: Literal["nearest", "bilinear", "cubic", "average", "mode"] = Field(
        "bilinear", description="resampling onto the experiment grid")
    nodata: float | None = Field(None, description="nodata value overriding the file's")
    name: str | None = Field(None, description="prefix for band names (default: file stem)")
    reproject: bool = Field(False, description="warp this source if its CRS is not the grid's")
    stac: str | None = Field(None, description="instead of 'path': a STAC item, catalog or "
                             "collection JSON (local or file://); each of its 'assets' becomes "
                             "a source with this entry's options, stacked in order (a catalog's "
                             "items: a mosaic per asset)")
    assets: list[str] | None = Field(None, description="with 'stac': the asset keys to stack, "
                                     "e.g. [B02, B03, B04, B08]")

    @model_validator(mode="after")
    def _stac(self):
        if self.assets is not None and self.stac is None:
            raise ValueError("'assets' needs 'stac': the STAC item they belong to")
        return self

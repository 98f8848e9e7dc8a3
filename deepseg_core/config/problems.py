"""Schema validation errors as one line per problem: file, key path and what was expected."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError

from .schema import Experiment

SCALAR_TAGS = {"str", "int", "float", "bool", "none", "bytes"}


def _is_tag(part) -> bool:
    """Union members and validator names pydantic adds to a location (never a key of ours)."""
    return isinstance(part, str) and (part in SCALAR_TAGS or part[:1].isupper()
                                      or any(c in part for c in "[(-"))


def key_path(loc) -> str:
    """A location as the user writes it: ``training.batch_size``, ``images[0].path``."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _section(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _section(arg)
        if found is not None:
            return found
    return None


def allowed_keys(loc) -> list[str]:
    """The keys the schema accepts in the mapping at ``loc`` (empty when free-form)."""
    model: type[BaseModel] | None = Experiment
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        model = _section(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _unknown(loc) -> str:
    allowed = allowed_keys(loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; expected one of: {', '.join(allowed)}" if allowed else "unknown key"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def schema_problems(path: Path, error: ValidationError) -> list[str]:
    """One line per invalid key; the alternatives of a union are joined into one line."""
    found: dict[str, list[str]] = {}
    got: dict[str, str] = {}
    for err in error.errors():
        loc = tuple(p for p in err["loc"] if not _is_tag(p))
        key = key_path(loc)
        if err["type"] == "extra_forbidden":
            msg = _unknown(loc)
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] != "value_error":  # ours name the value
                got.setdefault(key, f" (got {_short(err['input'])})")
        messages = found.setdefault(key, [])
        if msg not in messages:
            messages.append(msg)
    lines = []
    for key, messages in found.items():
        first, *rest = messages
        if first.startswith("Input should be "):
            rest = [m.removeprefix("Input should be ") for m in rest]
        lines.append(f"{path}: {key}: {' or '.join([first, *rest])}{got.get(key, '')}")
    return lines

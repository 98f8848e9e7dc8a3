"""Checks of an experiment that need the plugin registry (names of models, formats, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..backend import check_model
from ..errors import ConfigError, DeepSegError
from .schema import Experiment

if TYPE_CHECKING:
    from ..plugins.registry import Kind, Registry


def check_registry(exp: Experiment, registry: Registry) -> None:
    """Every registered name the experiment uses exists; the model accepts its settings."""
    where = str(exp.source or "experiment")
    problems = []

    def lookup(kind: Kind, name: str, key: str) -> Any:
        try:
            return registry.get(kind, name)
        except DeepSegError as exc:
            problems.append(f"{where}: {key}: {exc}")
            return None

    model = lookup("model", exp.model.name, "model.name")
    if model is not None:
        try:
            check_model(model, exp.model.name)
        except DeepSegError as exc:
            problems.append(f"{where}: model.name: {exc}")
            model = None  # its other checks would add nothing the user can act on first
    if model is not None:
        if model.segmentation_type != exp.segmentation_type:
            problems.append(f"{where}: model.name: {exp.model.name!r} is a "
                            f"{model.segmentation_type} model but segmentation_type is "
                            f"{exp.segmentation_type!r}")
        else:
            try:
                model.validate(exp.nbands, len(exp.classes), exp.tilesize, exp.model.params)
            except (DeepSegError, TypeError, ValueError) as exc:
                problems.append(f"{where}: model: {exc}")
    lookup("tiler", exp.tiler, "tiler")
    for i, aug in enumerate(exp.augmentation):
        factory = lookup("augmenter", aug.name, f"augmentation[{i}].name")
        if factory is not None:
            unknown = unknown_parameters(factory, aug.params)
            if unknown:
                problems.append(f"{where}: augmentation[{i}]: {unknown}")
                continue
            try:
                factory(**aug.params)
            except (DeepSegError, TypeError) as exc:
                problems.append(f"{where}: augmentation[{i}]: {exc}")
    if exp.predict.format:
        lookup("writer", exp.predict.format, "predict.format")
    else:
        try:
            registry.writer_for(exp.predict.output)
        except DeepSegError as exc:
            problems.append(f"{where}: predict.output: {exc}")
    for i, name in enumerate(exp.crossval.metrics or []):
        lookup("metric", name, f"crossval.metrics[{i}]")
    if problems:
        raise ConfigError(problems)


def unknown_parameters(factory: Callable[..., Any], params: dict[str, Any]) -> str | None:
    """A message naming the parameters ``factory`` does not take and the ones it does."""
    import difflib
    import inspect

    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    accepted = [n for n, p in signature.parameters.items() if n != "self" and p.kind in
                (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    unknown = sorted(set(params) - set(accepted))
    if not unknown:
        return None
    hints = [f" (did you mean {close[0]!r}?)" if close else "" for close in
             (difflib.get_close_matches(u, accepted, n=1) for u in unknown)]
    named = ", ".join(f"{u!r}{h}" for u, h in zip(unknown, hints))
    return (f"augmenter parameter(s) {named} unknown; expected some of: "
            f"{', '.join(sorted(accepted)) or 'none'}")

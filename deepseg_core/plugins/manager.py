"""Plugin manager: loads the built-in plugins and the entry points of the group ``deepseg``.

Entry points are loaded one by one when a command first needs the registry, never at import.
A plugin that fails to import or to register is recorded and skipped (``DEEPSEG_STRICT_PLUGINS=1``
re-raises); ``DEEPSEG_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name. A hook name that
matches no specification (a misspelling) is always an error.

The hooks are called through pluggy (``pm.hook.deepseg_register_*``), so pluggy's order and
its ``tryfirst``/``trylast``/``wrapper`` options hold. Each plugin is registered through a
stand-in whose hook implementations name the plugin as the provider of what it registers and
turn its errors into a recorded failure of that plugin alone. The built-ins' implementations
are ``tryfirst``: they register before any other plugin, which may then override them.
Built-in plugins are named ``deepseg:<module>`` (``deepseg:hpc``, ``deepseg:demo`` for the
command packages), a name no entry point can take.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

import deepseg_core.plugins.hookspecs as hookspecs

from ..errors import PluginLoadError, RegistryError
from ..io.messages import stdout_to_stderr
from .registry import Registry

GROUP = "deepseg"
BUILTIN_PLUGINS = ("deepseg_core.builtin.rasterio_io", "deepseg_core.builtin.tiler",
                   "deepseg_core.builtin.augment", "deepseg_core.builtin.metrics",
                   "deepseg_core.builtin.onnx_model", "deepseg_core.hpc.command",
                   "deepseg_core.demo.command", "deepseg_core.export.command")
HOOKS = ("readers", "writers", "tilers", "models", "augmenters", "metrics", "commands")
BUILTIN_PREFIX = "deepseg:"  # entry-point names starting so are refused
DISABLE_VAR = "DEEPSEG_DISABLE_PLUGINS"
STRICT_VAR = "DEEPSEG_STRICT_PLUGINS"


@dataclass
class PluginInfo:
    """One plugin: where it comes from, what it registered, or why it failed."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Plugins:
    """The result of loading plugins: the filled registry and what each plugin did."""

    registry: Registry
    plugins: list[PluginInfo]
    manager: pluggy.PluginManager

    @property
    def failures(self) -> list[PluginInfo]:
        """The plugins that failed to load or to register."""
        return [p for p in self.plugins if p.error]


def _strict() -> bool:
    return os.environ.get(STRICT_VAR, "").strip().lower() in ("1", "true", "yes")


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_VAR, "").split(",") if n.strip()}


def _entry_points() -> list[Any]:
    if sys.version_info >= (3, 12):
        from importlib.metadata import entry_points
    else:
        from importlib_metadata import entry_points
    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def _candidates(extra: Sequence[tuple[str, object]],
                ) -> Iterator[tuple[PluginInfo, Callable[[], object]]]:
    """(PluginInfo, loader) for the built-ins, the entry points and the ``extra`` modules."""
    from .. import __version__

    for module in BUILTIN_PLUGINS:
        short = module.removeprefix("deepseg_core.").removeprefix("builtin.").split(".")[0]
        info = PluginInfo(BUILTIN_PREFIX + short, module, "deepseg-core", __version__, True)
        yield info, functools.partial(importlib.import_module, module)
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        yield PluginInfo(ep.name, ep.value, dist and dist.name, dist and dist.version), ep.load
    for name, mod in extra:
        yield PluginInfo(name, getattr(mod, "__name__", name)), _given(mod)


def _given(module: object) -> Callable[[], object]:
    """A loader of an ``extra`` module that is imported already."""
    return lambda: module


def _fail(info: PluginInfo, exc: BaseException, what: str) -> None:
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, whatever the error
    info.error = f"{what}: {detail}"
    if _strict():
        raise PluginLoadError(f"plugin {info.name!r} ({info.module}) failed to {what}: "
                              f"{detail}") from exc


def _check_pending(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    """Fail loudly, in one line, on a hook implementation that matches no specification."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        unknown = [c.name for c in pm.get_hookcallers(exc.plugin) or () if not c.has_spec()]
        known = [f"deepseg_register_{hook}" for hook in HOOKS]
        hints = [f"did you mean {close[0]!r}?" for close in
                 (difflib.get_close_matches(u, known, n=1) for u in unknown) if close]
        module = infos[name].module if name in infos else "?"
        raise PluginLoadError(
            f"plugin {name!r} ({module}) implements unknown hook "
            f"{', '.join(repr(u) for u in unknown)} (misspelled? {' '.join(hints)}"
            f"{' ' if hints else ''}known hooks: {', '.join(known)}); fix it or set "
            f"{DISABLE_VAR}={name}") from None


def load_plugins(extra: Sequence[tuple[str, object]] = ()) -> Plugins:
    """Load built-ins, entry points and ``extra`` (name, module) pairs; run the hooks."""
    with stdout_to_stderr():
        return _load(extra)


def _load(extra: Sequence[tuple[str, object]]) -> Plugins:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    blocked = _disabled()
    listed: list[PluginInfo] = []
    infos: dict[str, PluginInfo] = {}  # the registered ones, by name
    for info, loader in _candidates(extra):
        if info.name in blocked:
            continue
        listed.append(info)
        try:
            if info.name.startswith(BUILTIN_PREFIX) and not info.builtin:
                raise ValueError(f"plugin names starting with {BUILTIN_PREFIX!r} are the "
                                 "built-ins'")
            plugin = loader()
            _check_api(plugin)
            pm.register(_isolated(plugin, info, registry), name=info.name)
        except KeyboardInterrupt:  # Ctrl-C still stops the command
            raise
        except BaseException as exc:  # sys.exit() too: one broken plugin must not lock us out
            _fail(info, exc, "load")
        else:
            infos[info.name] = info
    _check_pending(pm, infos)
    for hook in HOOKS:
        getattr(pm.hook, f"deepseg_register_{hook}")(registry=registry)
    registry.provider = "?"
    for info in listed:
        if infos.get(info.name) is not info:  # not registered (e.g. its name was taken)
            continue
        if info.error:  # failed halfway: leaves nothing behind
            registry.remove_provider(info.name)
        info.registered = registry.provided_by(info.name)
    return Plugins(registry=registry, plugins=listed, manager=pm)


def _check_api(plugin: object) -> None:
    """A plugin written for a newer plugin API than this core's fails to load."""
    wanted = getattr(plugin, "DEEPSEG_PLUGIN_API", None)
    if wanted is not None and (not isinstance(wanted, int) or wanted > hookspecs.API_VERSION):
        raise RuntimeError(f"it needs plugin API {wanted!r}; this deepseg-core provides "
                           f"{hookspecs.API_VERSION}: upgrade deepseg-core")


def _isolated(plugin: object, info: PluginInfo, registry: Registry) -> types.SimpleNamespace:
    """A stand-in for ``plugin`` for pluggy: each hook implementation, when pluggy calls it,
    names ``info`` as the registry's provider and records its errors as ``info``'s failure
    (registry and strictness errors still stop the load). Wrappers are passed as they are."""
    proxy = types.SimpleNamespace(__name__=getattr(plugin, "__name__", info.name))
    for attr in dir(plugin):
        function = getattr(plugin, attr, None)
        options = getattr(function, f"{GROUP}_impl", None)
        if options is None or not callable(function):
            continue
        if options.get("wrapper") or options.get("hookwrapper"):
            setattr(proxy, attr, function)
            continue
        setattr(proxy, attr, _guarded(function, info, registry, attr))
    return proxy


def _guarded(function: Callable[..., object], info: PluginInfo, registry: Registry,
             hook: str) -> Callable[..., object]:
    @functools.wraps(function)
    def call(*args: object) -> object:
        if info.error:
            return None
        registry.provider = info.name
        try:
            return function(*args)
        except (PluginLoadError, RegistryError, KeyboardInterrupt):
            raise
        except BaseException as exc:
            _fail(info, exc, f"register {hook.removeprefix('deepseg_register_')}")
        return None

    return call


_cached: Plugins | None = None


def get_plugins(reload: bool = False) -> Plugins:
    """The process-wide loaded plugins (loaded on first use)."""
    global _cached
    if _cached is None or reload:
        _cached = load_plugins()
    return _cached


def get_registry() -> Registry:
    """The registry of the process-wide loaded plugins."""
    return get_plugins().registry

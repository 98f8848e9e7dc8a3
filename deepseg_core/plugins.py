"""Plugin manager: loads the built-in plugins and the entry points of the group ``deepseg``.

Entry points are loaded one by one when a command first needs the registry, never at import.
A plugin that fails to import is recorded and skipped (``DEEPSEG_STRICT_PLUGINS=1`` re-raises);
``DEEPSEG_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import pluggy

from . import hookspecs
from .errors import PluginLoadError, RegistryError
from .registry import Registry

GROUP = "deepseg"
BUILTIN_PLUGINS = (
    "deepseg_core.builtin.rasterio_io",
    "deepseg_core.builtin.tiler",
    "deepseg_core.builtin.augment",
    "deepseg_core.builtin.metrics",
)
HOOKS = ("readers", "writers", "tilers", "models", "augmenters", "metrics")


@dataclass
class PluginInfo:
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
        return [p for p in self.plugins if p.error]


def _strict() -> bool:
    return os.environ.get("DEEPSEG_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("DEEPSEG_DISABLE_PLUGINS", "").split(",") if n.strip()}


def _entry_points():
    if sys.version_info >= (3, 12):
        from importlib.metadata import entry_points
    else:
        from importlib_metadata import entry_points
    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def _fail(info: PluginInfo, exc: BaseException, what: str) -> None:
    info.error = f"{what}: {type(exc).__name__}: {exc}"
    if _strict():
        raise PluginLoadError(f"plugin {info.name!r} ({info.module}) failed to {what}: "
                              f"{type(exc).__name__}: {exc}") from exc


def load_plugins(extra: list[tuple[str, object]] = ()) -> Plugins:
    """Load built-ins, entry points and ``extra`` (name, module) pairs; run the hooks."""
    import importlib

    pm = pluggy.PluginManager("deepseg")
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    blocked = _disabled()
    candidates = [(m.rsplit(".", 1)[-1], m, None, True) for m in BUILTIN_PLUGINS]
    candidates += [(ep.name, ep.value, ep, False) for ep in _entry_points()]
    candidates += [(name, getattr(mod, "__name__", name), mod, False) for name, mod in extra]
    for name, module, source, builtin in candidates:
        if name in blocked:
            continue
        info = PluginInfo(name=name, module=module, builtin=builtin)
        dist = getattr(source, "dist", None)
        if dist is not None:
            info.distribution, info.version = dist.name, dist.version
        elif builtin:
            from . import __version__
            info.distribution, info.version = "deepseg-core", __version__
        infos.append(info)
        try:
            if builtin:
                plugin = importlib.import_module(module)
            elif hasattr(source, "load"):
                plugin = source.load()
            else:
                plugin = source
            pm.register(plugin, name=name)
        except Exception as exc:  # one broken plugin must not lock the user out
            _fail(info, exc, "load")
    pm.check_pending()
    registry = Registry()
    by_name = {info.name: info for info in infos}
    for hook in HOOKS:
        caller = getattr(pm.hook, f"deepseg_register_{hook}")
        for impl in caller.get_hookimpls():  # registration order: built-ins first
            info = by_name[impl.plugin_name]
            if info.error:
                continue
            registry.provider = info.name
            args = {"registry": registry}
            try:
                impl.function(*[args[a] for a in impl.argnames])
            except (PluginLoadError, RegistryError):
                raise
            except Exception as exc:
                _fail(info, exc, f"register {hook}")
    for info in infos:
        info.registered = registry.provided_by(info.name)
    registry.provider = "?"
    return Plugins(registry=registry, plugins=infos, manager=pm)


_cached: Plugins | None = None


def get_plugins(reload: bool = False) -> Plugins:
    """The process-wide loaded plugins (loaded on first use)."""
    global _cached
    if _cached is None or reload:
        _cached = load_plugins()
    return _cached


def get_registry() -> Registry:
    return get_plugins().registry

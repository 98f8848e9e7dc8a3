"""Name -> thing registries filled by the plugins' registration hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from ..errors import DeepSegError, RegistryError
from ..io.gdalpaths import is_virtual

if TYPE_CHECKING:
    from collections.abc import Sequence

    import click
    from _typeshed import StrPath

    from ..contracts.model import ModelPlugin
    from ..contracts.raster import RasterReader, RasterWriter, Window
    from ..metrics.base import MetricFactory

Kind = Literal["reader", "writer", "tiler", "model", "augmenter", "metric", "command"]
KINDS: tuple[Kind, ...] = ("reader", "writer", "tiler", "model", "augmenter", "metric", "command")
#: a tiler: ``tiler(width, height, tilesize, overlap)`` -> the tile windows (a sequence),
#: row-major
Tiler = Callable[[int, int, int, int], "Sequence[Window]"]
#: the core's own ``deepseg`` commands (cli.py), which no plugin command may take
CORE_COMMANDS = ("crossval", "dataprep", "init", "merge", "plugins", "predict", "run", "train",
                 "validate")


@dataclass
class Entry:
    """One registered thing and the plugin that registered it."""

    name: str
    obj: Any
    provider: str


class Registry:
    """Holds every registered reader, writer, tiler, model, augmenter, metric and command by
    name."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self.provider = "?"  # set by the plugin manager while a plugin's hooks run

    def _add(self, kind: Kind, name: str, obj: object, override: bool) -> None:
        table = self._entries[kind]
        old = table.get(name)
        if old is not None and not override:
            raise RegistryError(
                f"{kind} {name!r} is registered twice: by plugin {old.provider!r} and by plugin "
                f"{self.provider!r} (pass override=True to replace it on purpose)")
        table[name] = Entry(name, obj, self.provider)

    def add_reader(self, name: str, reader: RasterReader, override: bool = False) -> None:
        """Register a raster reader as ``name``; ``override=True`` replaces an existing one."""
        self._check("reader", name, reader, methods=("can_open", "open"))
        self._add("reader", name, reader, override)

    def add_writer(self, name: str, writer: RasterWriter, override: bool = False) -> None:
        """Register a raster writer as ``name``; ``override=True`` replaces an existing one."""
        self._check("writer", name, writer, methods=("create",))
        self._add("writer", name, writer, override)

    def add_tiler(self, name: str, tiler: Tiler, override: bool = False) -> None:
        """Register a tiler as ``name``; ``override=True`` replaces an existing one."""
        self._check("tiler", name, tiler)
        self._add("tiler", name, tiler, override)

    def add_model(self, name: str, model: ModelPlugin, override: bool = False) -> None:
        """Register a model plugin as ``name``; ``override=True`` replaces an existing one."""
        from ..contracts.model import contract_problem

        problem = contract_problem(model)
        if problem:
            raise TypeError(f"model {name!r} of plugin {self.provider!r} does not follow the "
                            f"model contract (deepseg_core.contracts.model): {problem}")
        self._add("model", name, model, override)

    def add_augmenter(self, name: str, factory: Callable[..., Any],
                      override: bool = False) -> None:
        """Register an augmenter factory as ``name``; ``override=True`` replaces an existing one."""
        self._check("augmenter", name, factory)
        self._add("augmenter", name, factory, override)

    def add_metric(self, name: str, factory: MetricFactory, override: bool = False) -> None:
        """Register a metric factory as ``name``; ``override=True`` replaces an existing one."""
        self._check("metric", name, factory)
        self._add("metric", name, factory, override)

    def add_command(self, name: str, command: click.Command, override: bool = False) -> None:
        """Register a click command as ``deepseg NAME``; ``override=True`` replaces one."""
        self._check("command", name, command, methods=("main", "invoke"))
        if name in CORE_COMMANDS:
            raise TypeError(f"command {name!r} of plugin {self.provider!r}: 'deepseg {name}' "
                            "is one of the core's own commands")
        self._add("command", name, command, override)

    def _check(self, kind: Kind, name: str, obj: object, methods: tuple[str, ...] = ()) -> None:
        """A TypeError (the plugin fails, the others go on) when ``obj`` cannot be what
        ``kind`` needs: callable (tilers and factories) or with ``methods`` (readers, writers)."""
        missing = [m for m in methods if not callable(getattr(obj, m, None))]
        if not methods and not callable(obj):
            missing = ["__call__"]
        if missing:
            raise TypeError(f"{kind} {name!r} of plugin {self.provider!r} does not follow the "
                            f"{kind} contract: it lacks {', '.join(missing)}")

    def remove_provider(self, provider: str) -> None:
        """Forget everything one plugin registered (used when it fails halfway)."""
        for table in self._entries.values():
            for name in [n for n, e in table.items() if e.provider == provider]:
                del table[name]

    def names(self, kind: Kind) -> list[str]:
        """Sorted names registered for ``kind``."""
        return sorted(self._entries[kind])

    def entries(self, kind: Kind) -> list[Entry]:
        """The entries registered for ``kind``, sorted by name."""
        return [self._entries[kind][n] for n in self.names(kind)]

    @overload
    def get(self, kind: Literal["model"], name: str) -> ModelPlugin: ...
    @overload
    def get(self, kind: Literal["reader"], name: str) -> RasterReader: ...
    @overload
    def get(self, kind: Literal["writer"], name: str) -> RasterWriter: ...
    @overload
    def get(self, kind: Literal["tiler"], name: str) -> Tiler: ...
    @overload
    def get(self, kind: Literal["command"], name: str) -> click.Command: ...
    @overload
    def get(self, kind: Literal["metric"], name: str) -> MetricFactory: ...
    @overload
    def get(self, kind: Kind, name: str) -> Any: ...

    def get(self, kind: Kind, name: str) -> Any:
        """The object registered as ``name``; an unknown name lists the available ones."""
        entry = self._entries[kind].get(name)
        if entry is None:
            available = ", ".join(self.names(kind)) or "none"
            raise RegistryError(f"unknown {kind} {name!r}; available: {available}")
        return entry.obj

    def provided_by(self, provider: str) -> dict[str, list[str]]:
        """What one plugin registered, by kind."""
        return {kind: sorted(e.name for e in table.values() if e.provider == provider)
                for kind, table in self._entries.items()
                if any(e.provider == provider for e in table.values())}

    def reader_for(self, path: StrPath) -> RasterReader:
        """The reader for ``path``: one claiming its suffix, else a catch-all that opens it."""
        if not is_virtual(path) and not Path(path).exists():
            raise RegistryError(f"{path}: file not found")
        suffix = Path(path).suffix.lower()
        for entry in self.entries("reader"):
            if suffix in getattr(entry.obj, "extensions", ()) and entry.obj.can_open(path):
                return entry.obj
        catch_all = [e.obj for e in self.entries("reader") if not getattr(e.obj, "extensions", ())]
        for reader in catch_all:
            if reader.can_open(path):
                return reader
        why = ""
        if catch_all:  # let the catch-all reader say what is wrong with the file
            try:
                catch_all[0].open(path).close()
            except DeepSegError as exc:
                why = f"; {exc}"
        raise RegistryError(f"{path}: no registered reader can open this file "
                            f"(readers: {', '.join(self.names('reader')) or 'none'}){why}")

    def writer_for(self, path: StrPath, format: str | None = None) -> RasterWriter:
        """The writer named ``format``, else the one claiming the suffix of ``path``."""
        if format:
            return self.get("writer", format)
        suffix = Path(path).suffix.lower()
        for entry in self.entries("writer"):
            if suffix in getattr(entry.obj, "extensions", ()):
                return entry.obj
        raise RegistryError(f"{path}: no registered writer for suffix {suffix!r} "
                            f"(writers: {', '.join(self.names('writer')) or 'none'}); "
                            "name one with 'format:'")

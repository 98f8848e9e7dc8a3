"""The hook specifications of DeepSeg: the one place a plugin author reads.

Every hook receives a :class:`deepseg_core.plugins.registry.Registry` and registers things on it;
none returns anything. Implement a hook with ``@deepseg_core.hookimpl`` in a module named by an
entry point of the group ``deepseg``::

    [project.entry-points.deepseg]
    mymodel = "mymodel.plugin"

Plugins are loaded lazily (when a command needs the registry). Heavy libraries (TensorFlow,
Keras) must be imported inside factories, never at module import. Hooks evolve only by adding
arguments; an implementation may accept fewer arguments than the spec.

Versions: every hook says the plugin API version it appeared in. A plugin module may declare
``DEEPSEG_PLUGIN_API = N``, the API version it was written for; a core whose
:data:`API_VERSION` is lower reports that plugin as failed instead of running it.

Order: the hooks are called through pluggy, so ``@hookimpl(tryfirst=True)``,
``trylast=True`` and ``wrapper=True`` work as pluggy documents; without them, plugins
registered later run first (pluggy's order), so an entry point runs before the built-ins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .registry import Registry

hookspec = pluggy.HookspecMarker("deepseg")

#: The plugin API this core provides (a plugin's ``DEEPSEG_PLUGIN_API`` must not exceed it).
API_VERSION = 2


@hookspec
def deepseg_register_readers(registry: Registry) -> None:
    """Register raster readers: ``registry.add_reader(name, reader)``.

    Parameter ``registry``: the :class:`~deepseg_core.plugins.registry.Registry` to fill.
    Since plugin API 1.

    ``reader`` follows :mod:`deepseg_core.contracts.raster` (``extensions``, ``can_open(path)``,
    ``open(path) -> RasterSource``). A reader claiming a suffix is preferred over the
    catch-all GDAL reader for files with that suffix.
    """


@hookspec
def deepseg_register_writers(registry: Registry) -> None:
    """Register raster writers: ``registry.add_writer(name, writer)``.

    Parameter ``registry``: the :class:`~deepseg_core.plugins.registry.Registry` to fill.
    Since plugin API 1.

    ``writer`` has ``extensions`` and ``create(path, info, **options) -> RasterSink``
    (windowed writes; colour table and class names come from ``info``); optionally
    ``threads_option``, the name of the ``create`` option that lets it compress in N threads
    (the assembly of predictions passes ``{threads_option: N}``; without it, nothing).
    """


@hookspec
def deepseg_register_tilers(registry: Registry) -> None:
    """Register tilers: ``registry.add_tiler(name, tiler)``.

    Parameter ``registry``: the :class:`~deepseg_core.plugins.registry.Registry` to fill.
    Since plugin API 1.

    ``tiler(width, height, tilesize, overlap) -> Sequence[Window]`` returns windows covering
    every pixel of a ``height`` x ``width`` raster, row-major, each ``tilesize`` square: a list,
    or any sequence (``len``, indexing, slicing, iteration). The built-in ``grid`` returns a
    :class:`deepseg_core.geo.grid.TileGrid`, computed from its row and column origins, so 20
    million tiles cost kilobytes; a list holds every window as an object (with their cores,
    gigabytes at tens of millions of tiles) for the whole run.
    """


@hookspec
def deepseg_register_models(registry: Registry) -> None:
    """Register model plugins: ``registry.add_model(name, model)``.

    Parameter ``registry``: the :class:`~deepseg_core.plugins.registry.Registry` to fill.
    Since plugin API 1.

    ``model`` follows :class:`deepseg_core.contracts.model.ModelPlugin` (segmentation type,
    parameter validation, build, compile, training targets, per-tile prediction). Semantic
    models usually subclass :class:`deepseg_core.contracts.model.SemanticModel` and only provide
    ``network()``.
    """


@hookspec
def deepseg_register_augmenters(registry: Registry) -> None:
    """Register joint image+label augmenters: ``registry.add_augmenter(name, factory)``.

    Parameter ``registry``: the :class:`~deepseg_core.plugins.registry.Registry` to fill.
    Since plugin API 1.

    ``factory(**params)`` returns ``aug(image, label, rng) -> (image, label)`` with image
    ``(rows, cols, bands)`` and label ``(rows, cols)`` (class ids or instance ids). Geometric
    changes must apply identically to both and never interpolate labels.
    """


@hookspec
def deepseg_register_metrics(registry: Registry) -> None:
    """Register evaluation metrics: ``registry.add_metric(name, factory)``.

    Parameter ``registry``: the :class:`~deepseg_core.plugins.registry.Registry` to fill.
    Since plugin API 1.

    ``factory(class_names, ignore_label)`` returns an object following
    :class:`deepseg_core.metrics.base.Metric`: ``applies_to`` ('semantic'|'instance'),
    ``update(...)``, ``state()``/``merge(states)``, ``summary() -> dict[str, float]`` and
    ``write_report(folder, stem) -> list[Path]``.
    """


@hookspec
def deepseg_register_commands(registry: Registry) -> None:
    """Register ``deepseg`` subcommands: ``registry.add_command(name, command)``.

    Parameter ``registry``: the :class:`~deepseg_core.plugins.registry.Registry` to fill.
    Since plugin API 2.

    ``command`` is a :mod:`click` command; ``deepseg NAME ...`` runs it and ``deepseg --help``
    lists it. A :class:`~deepseg_core.errors.DeepSegError` it raises is shown as one line, as
    for the core's commands. The cluster commands (``sbatch``, ``shards``, ``files``) and
    ``demo`` are built-in plugins of this hook. The names of the core's own commands
    (``run``, ``train``, ...: ``registry.CORE_COMMANDS``) cannot be taken.
    """

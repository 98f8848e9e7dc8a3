"""The hook specifications of DeepSeg: the one place a plugin author reads.

Every hook receives a :class:`deepseg_core.plugins.registry.Registry` and registers things on it;
none returns anything. Implement a hook with ``@deepseg_core.hookimpl`` in a module named by an
entry point of the group ``deepseg``::

    [project.entry-points.deepseg]
    mymodel = "mymodel.plugin"

Plugins are loaded lazily (when a command needs the registry). Heavy libraries (TensorFlow,
Keras) must be imported inside factories, never at module import. Hooks evolve only by adding
arguments; an implementation may accept fewer arguments than the spec.
"""

import pluggy

hookspec = pluggy.HookspecMarker("deepseg")


@hookspec
def deepseg_register_readers(registry):
    """Register raster readers: ``registry.add_reader(name, reader)``.

    ``reader`` follows :mod:`deepseg_core.contracts.raster` (``extensions``, ``can_open(path)``,
    ``open(path) -> RasterSource``). A reader claiming a suffix is preferred over the
    catch-all GDAL reader for files with that suffix.
    """


@hookspec
def deepseg_register_writers(registry):
    """Register raster writers: ``registry.add_writer(name, writer)``.

    ``writer`` has ``extensions`` and ``create(path, info, **options) -> RasterSink``
    (windowed writes; colour table and class names come from ``info``).
    """


@hookspec
def deepseg_register_tilers(registry):
    """Register tilers: ``registry.add_tiler(name, tiler)``.

    ``tiler(width, height, tilesize, overlap) -> list[Window]`` returns windows covering every
    pixel of a ``height`` x ``width`` raster, row-major, each ``tilesize`` square.
    """


@hookspec
def deepseg_register_models(registry):
    """Register model plugins: ``registry.add_model(name, model)``.

    ``model`` follows :class:`deepseg_core.contracts.model.ModelPlugin` (segmentation type,
    parameter validation, build, compile, training targets, per-tile prediction). Semantic
    models usually subclass :class:`deepseg_core.contracts.model.SemanticModel` and only provide
    ``network()``.
    """


@hookspec
def deepseg_register_augmenters(registry):
    """Register joint image+label augmenters: ``registry.add_augmenter(name, factory)``.

    ``factory(**params)`` returns ``aug(image, label, rng) -> (image, label)`` with image
    ``(rows, cols, bands)`` and label ``(rows, cols)`` (class ids or instance ids). Geometric
    changes must apply identically to both and never interpolate labels.
    """


@hookspec
def deepseg_register_metrics(registry):
    """Register evaluation metrics: ``registry.add_metric(name, factory)``.

    ``factory(class_names, ignore_label)`` returns an object following
    :class:`deepseg_core.metrics.base.Metric`: ``applies_to`` ('semantic'|'instance'),
    ``update(...)``, ``state()``/``merge(states)``, ``summary() -> dict[str, float]`` and
    ``write_report(folder, stem) -> list[Path]``.
    """

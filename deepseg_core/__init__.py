"""DeepSeg core: config, stages, HDF5 store, CLI and plugin manager.

Importing this package is cheap: it imports no plugin and no TensorFlow.
"""

import pluggy

__version__ = "0.1.0"

#: Marker for hook implementations: ``from deepseg_core import hookimpl``.
hookimpl = pluggy.HookimplMarker("deepseg")

__all__ = ["__version__", "hookimpl"]

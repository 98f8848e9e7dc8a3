"""DeepSeg core: config, stages, HDF5 store, CLI and plugin manager.

Importing this package is cheap: it imports no plugin and no TensorFlow.
"""

import os

import pluggy

__version__ = "0.1.0"

#: Marker for hook implementations: ``from deepseg_core import hookimpl``.
hookimpl = pluggy.HookimplMarker("deepseg")

# TensorFlow 2.20/2.21's oneDNN CPU kernels now and then corrupt the heap (double free in
# conv backprop and rank-4 matmul; tensorflow#117700, #123109): one of every few training
# runs in a process died with SIGABRT. TensorFlow's Eigen kernels have no such fault. This
# takes effect only if TensorFlow is imported after deepseg_core; a user's own value wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__all__ = ["__version__", "hookimpl"]

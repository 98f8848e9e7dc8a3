"""The training engine's one door to backend-specific code: distribution (none, mirrored over
the node's devices, multiworker across processes), determinism, the devices, the input of
``fit`` and the errors the backend raises.

Each backend has one module with the same functions: backend_tf.py (tf.distribute, tf.data,
tf.config, tf.errors) and backend_jax.py (keras.distribution, jax.distributed). Nothing else
in the engine imports TensorFlow or JAX; the models use ``keras.ops``. cluster.py says where
a multi-worker cluster comes from.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..backend import current
from ..errors import DeepSegError

if TYPE_CHECKING:
    from ..contracts.model import KerasModel
    from .cluster import Cluster
    from .dataset import StoreDataset

_CLUSTERS: dict[str, Cluster] = {}


def backend_module() -> ModuleType:
    """The module of the backend Keras runs on (backend_tf or backend_jax).

    Each provides ``make_cluster(kind, communication)``,
    ``multiworker_cluster(communication)``, ``accelerators()``,
    ``deterministic()``, ``prepare_fit(model, cluster, dataset, first_epoch)``,
    ``fit_input(cluster, dataset, first_epoch)``, ``io_errors()`` and ``lost_peer(exc)``.
    """
    if current() == "jax":
        from . import backend_jax

        return backend_jax
    from . import backend_tf

    return backend_tf


def multiworker_cluster(communication: str = "auto") -> Cluster:
    """The backend's multi-worker cluster over the Slurm step or the backend's variables."""
    return backend_module().multiworker_cluster(communication)


def cluster_for(kind: str, communication: str = "auto") -> Cluster:
    """The cluster of ``training.distribute``, made once per process (collectives require it).

    Call before any other operation of the backend: a multi-worker cluster must be set up at
    program start-up. ``communication`` (``training.communication``) picks TensorFlow's
    gradient exchange between workers; JAX chooses its own (NCCL between GPUs).
    """
    if kind not in _CLUSTERS:
        if _CLUSTERS and kind == "multiworker":  # collectives are set up at start-up only
            raise DeepSegError("training.distribute: multiworker after another strategy in "
                               "the same process; run it in a new process")
        _CLUSTERS[kind] = backend_module().make_cluster(kind, communication)
    return _CLUSTERS[kind]


def fit_input(cluster: Cluster, model: KerasModel, train: StoreDataset,
              val: StoreDataset | None, first_epoch: int) -> tuple[Any, Any, dict[str, Any]]:
    """(training input, validation input, steps) for ``fit``: the datasets themselves on one
    replica, else each worker's share as its backend feeds it (with the steps per epoch that
    an endless stream needs)."""
    if cluster.replicas == 1 and cluster.workers == 1:
        return train, val, {}
    module = backend_module()
    module.prepare_fit(model, cluster, train, first_epoch)
    x, endless = module.fit_input(cluster, train, first_epoch)
    vx = module.fit_input(cluster, val, 0)[0] if val is not None else None
    steps = dict(steps_per_epoch=train.steps,
                 validation_steps=val.steps if val is not None else None) if endless else {}
    return x, vx, steps


def io_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of a failed write in a callback (OSError, and the backend's own)."""
    return backend_module().io_errors()


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` is the backend's error for a worker that left a multi-worker run."""
    return bool(backend_module().lost_peer(exc))

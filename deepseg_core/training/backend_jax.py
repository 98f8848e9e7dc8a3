"""The JAX side of the training engine: keras.distribution's DataParallel over the node's
devices (mirrored), jax.distributed over a Slurm step or JAX's own variables (multiworker),
each process's share of every global batch, and JAX's errors.

Keras' JAX trainer compiles one SPMD program: the global batch is split over every device of
every process and the gradients are all-reduced inside it, so the weights are the same
arrays on every worker. On CPU, processes exchange them through gloo.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from ..errors import DeepSegError
from .cluster import Cluster, in_slurm_step, slurm_step

if TYPE_CHECKING:
    from ..contracts.model import KerasModel
    from .dataset import StoreDataset

JAX_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def accelerators() -> int:
    """The GPUs (or TPUs) JAX sees in this process."""
    import jax

    return sum(d.platform != "cpu" for d in jax.local_devices())


def deterministic(jit: bool) -> None:
    """Nothing to do: XLA runs a compiled program to the same bits on CPU every time (GPUs
    keep their faster, order-free reductions, as on TensorFlow)."""


def io_errors() -> tuple[type[BaseException], ...]:
    """JAX writes no files itself: OSError covers every callback's writes."""
    return (OSError,)


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` is JAX's error for a worker that left the cluster (a failed
    collective or coordination call)."""
    return type(exc).__module__.split(".")[0] in ("jax", "jaxlib")


def _data_parallel(devices: list[Any], sharded_input: bool) -> Any:
    import keras

    distribution = keras.distribution.DataParallel(devices=devices)
    if sharded_input:  # each process reads its own share (dataset.py), never the whole batch
        distribution.auto_shard_dataset = False
    keras.distribution.set_distribution(distribution)
    return distribution


def _fork_is_safe() -> None:
    # The store's loader processes (training.workers) are forked while JAX's threads run;
    # they read HDF5 and run numpy only, never JAX, which is what JAX's warning is about.
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)


def coordinator() -> tuple[str, int, int]:
    """(coordinator address, processes, this process) of the Slurm step (one GPU share pinned
    per task) or of JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID."""
    from ..hpc.gpus import pin_gpus

    if in_slurm_step():
        step = slurm_step()
        pin_gpus(step.local, step.per_node)  # before JAX sees a device
        return f"{step.first_host}:{step.port}", step.tasks, step.task
    given = [name for name in JAX_VARIABLES if os.environ.get(name)]
    if not given:
        raise DeepSegError("training.distribute: multiworker needs a cluster: start one task "
                           "per worker with srun (srun deepseg train EXPERIMENT) or set "
                           f"{', '.join(JAX_VARIABLES)}; none is set")
    try:
        address, count, index = (os.environ[name] for name in JAX_VARIABLES)
        processes, process = int(count), int(index)
    except (KeyError, ValueError):
        raise DeepSegError(f"{', '.join(JAX_VARIABLES)}: expected host:port and two whole "
                           f"numbers; set are {', '.join(given)}") from None
    if not 0 <= process < processes:
        raise DeepSegError(f"JAX_PROCESS_ID {process} is not in 0..{processes - 1} "
                           "(JAX_NUM_PROCESSES)")
    return address, processes, process


def multiworker_cluster(communication: str = "auto") -> Cluster:
    """jax.distributed over the cluster's processes, DataParallel over all their devices
    (``training.communication`` is TensorFlow's: XLA's collectives pick NCCL between GPUs)."""
    address, processes, process = coordinator()
    import jax

    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives
    except (AttributeError, ValueError):  # a JAX without the option: its own default
        pass
    try:
        jax.distributed.initialize(address, processes, process)
    except (RuntimeError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DeepSegError(f"training.distribute: multiworker: worker {process} of "
                           f"{processes} could not join the cluster at {address} "
                           f"({reason})") from None
    _fork_is_safe()
    devices = jax.devices()
    return Cluster("multiworker", len(devices), process, processes,
                   _data_parallel(devices, sharded_input=True))


def make_cluster(kind: str, communication: str = "auto") -> Cluster:
    """none: JAX's default device; mirrored: DataParallel over the node's devices."""
    _fork_is_safe()
    if kind == "multiworker":
        return multiworker_cluster()
    if kind == "mirrored":
        import jax

        devices = jax.local_devices()
        return Cluster(kind, len(devices), strategy=_data_parallel(devices, False))
    return Cluster("none")


def prepare_fit(model: KerasModel, cluster: Cluster, dataset: StoreDataset,
                first_epoch: int) -> None:
    """Nothing to prepare: Keras' JAX trainer builds the model from this process's batch."""


def fit_input(cluster: Cluster, dataset: StoreDataset, first_epoch: int) -> tuple[Any, bool]:
    """One process: the global batches (DataParallel splits them over the devices); several:
    this process's share of each, the parts of its devices' replicas in device order."""
    if cluster.workers == 1:
        return dataset, False
    import jax

    from .dataset import WorkerShare

    local = jax.local_device_count()
    return WorkerShare(dataset, cluster.worker * local, local, cluster.replicas), False

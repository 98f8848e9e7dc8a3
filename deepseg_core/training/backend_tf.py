"""The TensorFlow side of the training engine: tf.distribute (MirroredStrategy on one node,
MultiWorkerMirroredStrategy over a Slurm step or TF_CONFIG), op determinism, tf.data input of
each worker's share, tf.errors, and two patches of private Keras functions that
MultiWorkerMirroredStrategy needs (Keras 3.15).

TensorFlow's own collective all-reduce exchanges the gradients (distributed.py says what
DeepSeg does around it).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import DeepSegError
from .cluster import Cluster, in_slurm_step, slurm_step

if TYPE_CHECKING:
    from ..contracts.model import KerasModel
    from .dataset import StoreDataset


def accelerators() -> int:
    """The GPUs TensorFlow sees."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def deterministic(jit: bool) -> None:
    """Same seed, same weights: TensorFlow's op determinism on CPU (GPUs keep their speed).
    Not with ``jit`` (training.jit_compile: true): Keras refuses XLA under op determinism, and
    XLA runs its compiled step to the same bits on CPU anyway."""
    import tensorflow as tf

    if not jit and not accelerators():
        tf.config.experimental.enable_op_determinism()


def io_errors() -> tuple[type[BaseException], ...]:
    """OSError and TensorFlow's own I/O errors (tf.io writes TensorBoard's events)."""
    import tensorflow as tf

    return (OSError, tf.errors.OpError)


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` is TensorFlow's error for a worker that left the cluster."""
    return type(exc).__module__.startswith("tensorflow")


def slurm_resolver() -> Any:
    """SlurmClusterResolver for this step: ports from the job id, one GPU share per task."""
    import tensorflow as tf

    from ..hpc.gpus import pin_gpus

    step = slurm_step()
    pin_gpus(step.local, step.per_node)  # before TensorFlow sees a device
    # DeepSeg has pinned the GPUs itself; the resolver only needs a slot per task
    return tf.distribute.cluster_resolver.SlurmClusterResolver(
        port_base=step.port, gpus_per_node=step.per_node, gpus_per_task=1, auto_set_gpu=False)


def mean_over_workers() -> None:
    """Let Keras' fit average per-step scalars over the workers (Keras 3.15 cannot).

    Keras reduces each step's logs with ``strategy.reduce("MEAN", value, axis=0)`` under a
    multi-worker strategy, which fails for the scalar loss and metrics ("Invalid reduction
    dimension 0 for input with 0 dimensions"). Scalars are averaged with ``axis=None`` here;
    the epoch logs, read from the synchronized metric variables, are global either way.
    """
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "deepseg", False):
        return

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(
                strategy):
            import tensorflow as tf

            def mean(v: Any) -> Any:
                if not isinstance(v, tf.distribute.DistributedValues):
                    return v
                return strategy.reduce("MEAN", v, axis=0 if v.values[0].shape.rank else None)

            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    patched: Any = reduce_per_replica
    patched.deepseg = True  # marks the patch: it is applied once
    trainer.reduce_per_replica = patched


def communication_options(communication: str) -> Any:
    """MultiWorkerMirroredStrategy's CommunicationOptions of ``training.communication``."""
    import tensorflow as tf

    kinds = tf.distribute.experimental.CommunicationImplementation
    implementation = {"auto": kinds.AUTO, "ring": kinds.RING, "nccl": kinds.NCCL}
    return tf.distribute.experimental.CommunicationOptions(
        implementation=implementation[communication])


def multiworker_cluster(communication: str = "auto") -> Cluster:
    """MultiWorkerMirroredStrategy over the Slurm step or TF_CONFIG's cluster, its gradients
    exchanged as ``training.communication`` says."""
    import tensorflow as tf

    if in_slurm_step():
        resolver = slurm_resolver()
    elif os.environ.get("TF_CONFIG"):
        try:
            config = json.loads(os.environ["TF_CONFIG"])
            config["cluster"]["worker"]
            config["task"]["index"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DeepSegError(f"TF_CONFIG: expected JSON with cluster.worker and "
                               f"task.index ({type(exc).__name__}: {exc})") from None
        if "chief" in config["cluster"]:
            raise DeepSegError("TF_CONFIG: list every worker under cluster.worker (worker 0 "
                               "is the chief); a separate 'chief' task is not supported")
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    else:
        raise DeepSegError("training.distribute: multiworker needs a cluster: start one task "
                           "per worker with srun (srun deepseg train EXPERIMENT) or set "
                           "TF_CONFIG; neither is set")
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=resolver, communication_options=communication_options(communication))
    mean_over_workers()
    spec = resolver.cluster_spec().as_dict()
    return Cluster("multiworker", int(strategy.num_replicas_in_sync), int(resolver.task_id),
                   len(spec.get("worker", [])), strategy)


def make_cluster(kind: str, communication: str = "auto") -> Cluster:
    """The strategy of ``training.distribute`` (none: TensorFlow's default strategy)."""
    import tensorflow as tf

    if kind == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    elif kind == "multiworker":
        return multiworker_cluster(communication)
    else:
        kind, strategy = "none", tf.distribute.get_strategy()
    return Cluster(kind, int(strategy.num_replicas_in_sync), strategy=strategy)


def fit_input(cluster: Cluster, dataset: StoreDataset, first_epoch: int) -> tuple[Any, bool]:
    """Each worker's replicas' parts of every global batch, epoch after epoch, for ``fit``.

    The stream has no end: ``fit`` takes ``dataset.steps`` batches per epoch from one
    iterator, so epoch ``e`` always gets the batches of epoch ``e``. The dataset's
    ``training.workers`` processes make them ahead (loaders.py; ``dataset.close()`` ends them).
    """
    import tensorflow as tf

    replicas, loader = cluster.replicas, dataset.loader()
    sample = dataset.batch(first_epoch, 0, 0, replicas)
    spec = tf.nest.map_structure(
        lambda a: tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)), sample)

    def input_fn(context: Any) -> Any:
        local = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def generate() -> Iterator[tuple[Any, Any]]:
            keys = ((epoch, step, first + k, replicas) for epoch in itertools.count(first_epoch)
                    for step in range(dataset.steps)
                    for k in range(local))  # replicas of a worker take elements in turn
            yield from loader.batches(keys)  # made ahead by training.workers processes

        return tf.data.Dataset.from_generator(generate, output_signature=spec).prefetch(2)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return cluster.strategy.distribute_datasets_from_function(input_fn, options), True


def prepare_fit(model: KerasModel, cluster: Cluster, dataset: StoreDataset,
                first_epoch: int) -> None:
    """Build the model's optimizer, loss and metrics from one replica's batch.

    Keras 3 builds them in ``fit`` from a batch of the distributed input, reduced with
    ``strategy.reduce``, which MultiWorkerMirroredStrategy cannot do for an (x, y) tuple
    ("Attempt to convert a value (PerReplica...)"); built here, that step has nothing to do.
    """
    batch = dataset.batch(first_epoch, 0, 0, cluster.replicas)
    with cluster.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

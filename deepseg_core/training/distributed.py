"""tf.distribute for training: none, MirroredStrategy (one node) or MultiWorkerMirroredStrategy.

A multi-worker cluster comes from Slurm inside a job step (``srun deepseg train``: one task
per worker, ``SlurmClusterResolver``), else from ``TF_CONFIG``. TensorFlow's own collective
all-reduce exchanges the gradients; DeepSeg only feeds each worker its share of the tiles
(see dataset.py) and lets the chief alone write files.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import DeepSegError

if TYPE_CHECKING:
    from .dataset import StoreDataset


@dataclass
class Cluster:
    """The strategy of this process and this worker's place in the cluster."""

    strategy: Any  # a tf.distribute.Strategy
    kind: str
    worker: int = 0
    workers: int = 1

    @property
    def chief(self) -> bool:
        """Whether this worker writes the run's files (worker 0; the only one without a cluster)."""
        return self.worker == 0

    @property
    def replicas(self) -> int:
        """Replicas in sync over the whole cluster."""
        return int(self.strategy.num_replicas_in_sync)


_CLUSTERS: dict[str, Cluster] = {}


def in_slurm_step() -> bool:
    """Whether this process is a task of a Slurm job step (started by srun)."""
    return all(v in os.environ for v in ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS",
                                         "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE"))


def slurm_resolver() -> Any:
    """SlurmClusterResolver for this step: ports from the job id, one GPU share per task."""
    import tensorflow as tf
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import (
        expand_tasks_per_node,
    )

    from ..hpc.gpus import pin_gpus

    per_node = max(expand_tasks_per_node(os.environ["SLURM_STEP_TASKS_PER_NODE"]))
    local = int(os.environ.get("SLURM_LOCALID", os.environ["SLURM_PROCID"]))
    pin_gpus(local, per_node)  # before TensorFlow sees a device
    # ports per job, so two jobs sharing a node do not collide (tasks add their local rank)
    base = 20000 + (int(os.environ.get("SLURM_JOB_ID", "0")) % 4000) * 10
    # DeepSeg has pinned the GPUs itself; the resolver only needs a slot per task
    return tf.distribute.cluster_resolver.SlurmClusterResolver(
        port_base=base, gpus_per_node=per_node, gpus_per_task=1, auto_set_gpu=False)


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


def multiworker_cluster() -> Cluster:
    """MultiWorkerMirroredStrategy over the Slurm step or TF_CONFIG's cluster."""
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
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    mean_over_workers()
    spec = resolver.cluster_spec().as_dict()
    return Cluster(strategy, "multiworker", int(resolver.task_id),
                   len(spec.get("worker", [])))


def cluster_for(kind: str) -> Cluster:
    """The strategy of ``training.distribute``, created once per process (collectives require it).

    Call before any other TensorFlow operation: a multi-worker strategy must be set up at
    program start-up.
    """
    if kind not in _CLUSTERS:
        if _CLUSTERS and kind == "multiworker":  # collectives are set up at start-up only
            raise DeepSegError("training.distribute: multiworker after another strategy in "
                               "the same process; run it in a new process")
        import tensorflow as tf

        if kind == "mirrored":
            _CLUSTERS[kind] = Cluster(tf.distribute.MirroredStrategy(), kind)
        elif kind == "multiworker":
            _CLUSTERS[kind] = multiworker_cluster()
        else:
            _CLUSTERS[kind] = Cluster(tf.distribute.get_strategy(), "none")
    return _CLUSTERS[kind]


def distributed_input(cluster: Cluster, dataset: StoreDataset, first_epoch: int) -> Any:
    """Each worker's replicas' parts of every global batch, epoch after epoch, for ``fit``.

    The stream has no end: ``fit`` takes ``dataset.steps`` batches per epoch from one
    iterator, so epoch ``e`` always gets the batches of epoch ``e``.
    """
    import tensorflow as tf

    replicas = cluster.replicas
    sample = dataset.batch(first_epoch, 0, 0, replicas)
    spec = tf.nest.map_structure(
        lambda a: tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)), sample)

    def input_fn(context: Any) -> Any:
        local = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def generate() -> Iterator[tuple[Any, Any]]:
            for epoch in itertools.count(first_epoch):
                for step in range(dataset.steps):
                    for k in range(local):  # replicas of a worker take elements in turn
                        yield dataset.batch(epoch, step, first + k, replicas)

        return tf.data.Dataset.from_generator(generate, output_signature=spec).prefetch(2)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return cluster.strategy.distribute_datasets_from_function(input_fn, options)

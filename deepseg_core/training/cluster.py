"""A training process's place in its cluster, and in its Slurm job step, on any backend.

A multi-worker cluster comes from Slurm inside a job step (``srun deepseg train``: one task
per worker), else from the backend's own variables (TensorFlow: ``TF_CONFIG``; JAX:
``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``). The backend modules
do the rest -- backend_tf.py with tf.distribute, backend_jax.py with keras.distribution and
jax.distributed -- and their collectives exchange the gradients; DeepSeg only feeds each
worker its share of the tiles (dataset.py) and lets the chief alone write files.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import DeepSegError


@dataclass
class Cluster:
    """This process's place in the cluster and the backend's distribution object."""

    kind: str
    replicas: int = 1  # replicas in sync over the whole cluster
    worker: int = 0
    workers: int = 1
    strategy: Any = None  # tf.distribute.Strategy, or keras.distribution.Distribution (JAX)

    @property
    def chief(self) -> bool:
        """Whether this worker writes the run's files (worker 0; the only one without a cluster)."""
        return self.worker == 0

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Where the model's variables are made (the strategy's or distribution's scope)."""
        scope = getattr(self.strategy, "scope", None)
        return scope() if scope is not None else contextlib.nullcontext()


@dataclass(frozen=True)
class SlurmStep:
    """This task's place in its Slurm job step."""

    task: int  # SLURM_PROCID
    tasks: int  # SLURM_STEP_NUM_TASKS
    local: int  # SLURM_LOCALID
    per_node: int  # most tasks on one node
    first_host: str  # the step's first node: the coordinator
    port: int  # from the job id, so two jobs sharing a node do not collide


def in_slurm_step() -> bool:
    """Whether this process is a task of a Slurm job step (started by srun)."""
    return all(v in os.environ for v in ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS",
                                         "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE"))


def tasks_per_node(spec: str) -> list[int]:
    """Slurm's tasks-per-node list expanded: '3(x2),1' -> [3, 3, 1]."""
    counts = []
    for part in spec.split(","):
        found = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if found is None:
            raise DeepSegError(f"SLURM_STEP_TASKS_PER_NODE: cannot read {spec!r}")
        counts += [int(found.group(1))] * int(found.group(2) or 1)
    return counts


def first_host(nodelist: str) -> str:
    """The first node of a Slurm node list: 'gpu[03-05,9],cpu1' -> 'gpu03'."""
    found = re.match(r"([^,\[]+)(?:\[([^,\-\]]+))?", nodelist.strip())
    if found is None:
        raise DeepSegError(f"SLURM_STEP_NODELIST: cannot read {nodelist!r}")
    return found.group(1) + (found.group(2) or "")


def slurm_step() -> SlurmStep:
    """This task's place in the Slurm step (in_slurm_step() must hold)."""
    env = os.environ
    task = int(env["SLURM_PROCID"])
    base = 20000 + (int(env.get("SLURM_JOB_ID", "0")) % 4000) * 10
    return SlurmStep(task=task, tasks=int(env["SLURM_STEP_NUM_TASKS"]),
                     local=int(env.get("SLURM_LOCALID", task)),
                     per_node=max(tasks_per_node(env["SLURM_STEP_TASKS_PER_NODE"])),
                     first_host=first_host(env["SLURM_STEP_NODELIST"]), port=base)

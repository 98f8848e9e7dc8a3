"""One GPU per task: which of a node's GPUs a worker process may use (no TensorFlow needed)."""

from __future__ import annotations

import os
import shutil
import subprocess


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES, else those nvidia-smi lists."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(done.stdout.splitlines()) if line.startswith("GPU ")]


def gpu_share(gpus: list[str], local_rank: int, local_tasks: int) -> list[str]:
    """The GPUs of task ``local_rank`` of ``local_tasks`` on one node: an equal, disjoint share.

    A task that Slurm already bound to its own GPU (one visible) keeps it; with fewer GPUs
    than tasks, tasks share them round-robin.
    """
    if len(gpus) <= 1 or local_tasks <= 1:
        return list(gpus)
    if len(gpus) < local_tasks:
        return [gpus[local_rank % len(gpus)]]
    per = len(gpus) // local_tasks
    return gpus[local_rank * per:(local_rank + 1) * per]


def pin_gpus(local_rank: int, local_tasks: int) -> list[str]:
    """Restrict this process to its share of the node's GPUs (before TensorFlow starts)."""
    gpus = visible_gpus()
    if not gpus:
        return []
    share = gpu_share(gpus, local_rank, local_tasks)
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(share)
    return share

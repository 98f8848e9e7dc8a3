"""The CPU cores this process was given: its affinity, and a Slurm job's share of the node.

``os.cpu_count()`` counts the node's cores, whatever the job asked for. A process bound to
some cores (``taskset``, Slurm's task/affinity or task/cgroup) sees them in its affinity; a
Slurm job without binding sees the whole node there, and its share in SLURM_CPUS_PER_TASK.
"""

from __future__ import annotations

import os


def allotted_cores() -> int:
    """The cores this process may use: its affinity, at most SLURM_CPUS_PER_TASK (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this system (macOS)
        cores = os.cpu_count() or 1
    share = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if share.isdigit() and int(share) > 0:
        cores = min(cores, int(share))
    return max(1, cores)

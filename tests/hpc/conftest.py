"""The real Slurm clusters of the cluster tests (tests/support/slurm.py): one single-node
cluster per session, and the two-node one of test_multinode.py."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import unavailable
from tests.support.slurm import Cluster, install


def running(folder: Path, nodes: int, needs: str) -> Iterator[Cluster]:
    """A started cluster of ``nodes`` nodes in ``folder`` (Slurm installed first if missing),
    stopped afterwards; skips where it cannot run (``needs``: what root is needed for)."""
    if os.geteuid() != 0:
        pytest.skip(f"{needs} need root")
    reason = install() or (unavailable() if nodes > 1 else None)
    if reason:
        pytest.skip(reason)
    cluster = Cluster(folder, nodes=nodes)
    try:
        cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        logs = cluster.logs()
        cluster.stop()
        pytest.fail(f"Slurm did not start: {exc}\n{logs}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A running single-node Slurm cluster (installed first if missing)."""
    yield from running(tmp_path_factory.mktemp("slurm"), 1,
                       "the Slurm daemons of this test")


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """A running two-node Slurm (installed first if missing), stopped at the end."""
    cluster = None
    for cluster in running(tmp_path_factory.mktemp("slurm2"), 2,
                           "the Slurm daemons and network namespaces of this test"):
        yield cluster
    assert cluster is not None and not cluster.nodes.made  # namespaces, links, hosts removed

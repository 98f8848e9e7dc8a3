"""The real single-node Slurm of the cluster tests (tests/support/slurm.py), one per session."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.slurm import Cluster, install


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A running single-node Slurm cluster (installed first if missing)."""
    if os.geteuid() != 0:
        pytest.skip("the Slurm daemons of this test need root")
    reason = install()
    if reason:
        pytest.skip(reason)
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        logs = cluster.logs()
        cluster.stop()
        pytest.fail(f"Slurm did not start: {exc}\n{logs}")
    yield cluster
    cluster.stop()

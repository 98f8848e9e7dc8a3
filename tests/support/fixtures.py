"""Fixtures shared by the suite (tests/conftest.py imports them)."""

from __future__ import annotations

import pytest

from . import models
from .tmpfs import mount


@pytest.fixture(scope="session")
def registry():
    """The registry with every installed plugin and the test models (tests.support.models)."""
    from deepseg_core.plugins.manager import load_plugins

    return load_plugins(extra=[("testmodels", models)]).registry


@pytest.fixture
def small_disk(tmp_path):
    """``make(size)`` -> a mounted support.tmpfs.Tmpfs, unmounted after the test."""
    mounted = []

    def make(size, name: str = "disk"):
        mounted.append(mount(tmp_path / name, size))
        return mounted[-1]

    yield make
    for disk in mounted:
        disk.unmount()

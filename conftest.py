"""Shared pytest fixtures for the core's and the plugins' tests."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption("--backend", choices=["tensorflow", "jax"], default=None,
                     help="Keras backend of the tests and the processes they start "
                          "(default: KERAS_BACKEND, else tensorflow)")


def pytest_configure(config):
    chosen = config.getoption("--backend")
    if chosen:  # before any test module imports Keras
        os.environ["KERAS_BACKEND"] = chosen


@pytest.fixture(autouse=True)
def deepseg_messages():
    """The engines' messages shown as the CLI shows them (tests read what a user reads)."""
    from deepseg_core.io.messages import show

    show()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test rasters in ../shared/data (skips where that folder is absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} "
                    "(it sits beside the checkout in CI)")
    return SHARED_DATA

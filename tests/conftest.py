"""Fixtures of the core test suite (they live in tests/support/fixtures.py)."""

from tests.support.fixtures import registry, small_disk  # noqa: F401 - fixtures

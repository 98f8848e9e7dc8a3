"""Fixtures of the core test suite."""

from tmpfs import small_disk  # noqa: F401 - a fixture: a real small tmpfs

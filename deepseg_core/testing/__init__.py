"""Helpers for plugin authors' test suites: conformance checks of models, readers, writers."""

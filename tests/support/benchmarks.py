"""A benchmarks/ script loaded as a module by the tests of its pure parts (benchmarks/ is no
package, and a checkout may leave it out)."""

import importlib.util

import pytest

from . import ROOT

BENCHMARKS = ROOT / "benchmarks"


def present(name: str):
    """The mark that skips a module's tests where benchmarks/``name``.py is not there
    (``name`` may name a subfolder's script: ``device/kit``)."""
    return pytest.mark.skipif(not (BENCHMARKS / f"{name}.py").exists(),
                              reason="benchmarks/ not in this checkout")


def load(name: str):
    """benchmarks/``name``.py as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name.replace('/', '_')}",
                                                  BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""Experiment configuration: schema, loading, and checks against the registry."""

from .checks import check_registry
from .loader import ENV_VAR, expand_paths, load_experiment
from .schema import STAGES, Experiment

__all__ = ["ENV_VAR", "STAGES", "Experiment", "check_registry", "expand_paths", "load_experiment"]

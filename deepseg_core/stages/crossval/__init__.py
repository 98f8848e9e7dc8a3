"""Crossval: train on k-1 spatial folds, score the held-out one (``run``)."""

from .stage import run

__all__ = ["run"]

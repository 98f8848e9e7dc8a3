"""Train: the training run over the store, its checkpoints and logs (``run``)."""

from .stage import run

__all__ = ["run"]

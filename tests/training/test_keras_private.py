"""The private Keras functions that DeepSeg patches or calls are still there, and still used
as DeepSeg expects (backend_tf.mean_over_workers and prepare_fit, for multi-worker training).

Keras is bounded (pyproject.toml: keras<3.16) because of them. When a Keras release renames,
moves or stops calling one of them, these tests fail, naming it, before a multi-worker
training fails on a cluster.
"""

from __future__ import annotations

import inspect
import types

import pytest

pytest.importorskip("tensorflow")

WHY = ("Keras {version} changed a private function DeepSeg relies on "
       "(deepseg_core/training/backend_tf.py): {what}; adapt the patch before raising "
       "the bound on keras in pyproject.toml")


def nested(code: types.CodeType, name: str) -> types.CodeType:
    """The code of the function ``name`` defined inside ``code``."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_name == name:
                return const
            try:
                return nested(const, name)
            except LookupError:
                continue
    raise LookupError(name)


def check(condition: bool, what: str) -> None:
    import keras

    assert condition, WHY.format(version=keras.__version__, what=what)


def test_the_step_reduces_its_logs_through_the_module_function_deepseg_patches():
    from keras.src.backend.tensorflow import trainer

    for name, parameters in (("reduce_per_replica", ["values", "strategy", "reduction"]),
                             ("_collective_all_reduce_multi_worker", ["strategy"])):
        function = getattr(trainer, name, None)
        check(callable(function), f"keras.src.backend.tensorflow.trainer.{name} is gone")
        check(list(inspect.signature(function).parameters) == parameters,
              f"trainer.{name} takes {inspect.signature(function)}, not ({', '.join(parameters)})")
    # the train step looks the function up in the module when it runs: the patch takes effect
    try:
        step = nested(trainer.TensorFlowTrainer._make_function.__code__, "one_step_on_data")
    except (AttributeError, LookupError):
        check(False, "TensorFlowTrainer._make_function has no one_step_on_data any more")
    check("reduce_per_replica" in step.co_names,
          "the train step (one_step_on_data) no longer calls trainer.reduce_per_replica")


def test_the_patch_is_applied_once_and_passes_other_strategies_through():
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    from deepseg_core.training.backend_tf import mean_over_workers

    original = trainer.reduce_per_replica
    try:
        mean_over_workers()
        patched = trainer.reduce_per_replica
        mean_over_workers()
        assert trainer.reduce_per_replica is patched and patched.deepseg
        strategy = tf.distribute.get_strategy()  # the default: one device, not multi-worker
        check(not trainer._collective_all_reduce_multi_worker(strategy),
              "_collective_all_reduce_multi_worker is true for the default strategy")
        reduced = patched({"loss": tf.constant([1.0, 3.0])}, strategy, "auto")
        assert reduced["loss"].numpy().tolist() == [1.0, 3.0]  # Keras' own reduction
    finally:
        trainer.reduce_per_replica = original


def test_fit_builds_the_model_through_the_method_deepseg_replaces():
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    for name in ("_symbolic_build", "_maybe_symbolic_build"):
        method = getattr(TensorFlowTrainer, name, None)
        check(callable(method), f"TensorFlowTrainer.{name} is gone")
        check(list(inspect.signature(method).parameters) == ["self", "iterator", "data_batch"],
              f"TensorFlowTrainer.{name} takes {inspect.signature(method)}, not "
              "(self, iterator=None, data_batch=None)")
    for caller in ("fit", "evaluate"):
        code = inspect.unwrap(getattr(TensorFlowTrainer, caller)).__code__  # under decorators
        check("_maybe_symbolic_build" in code.co_names,
              f"TensorFlowTrainer.{caller} no longer calls self._maybe_symbolic_build")


def test_keras_is_within_the_bound_these_checks_were_made_for():
    import keras
    from packaging.version import Version

    check(Version("3.15.1") <= Version(keras.__version__) < Version("3.16"),
          "this version is outside keras>=3.15.1,<3.16 of pyproject.toml")

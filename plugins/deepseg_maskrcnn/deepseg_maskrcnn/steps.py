"""The backend-specific ends of the Mask R-CNN model: its training and test steps (Keras'
TensorFlow trainer calls ``train_step(data)``, its JAX trainer ``train_step(state, data)``,
a pure function of the variables) and the compiled inference function of ``detect``.
Everything between them is ``keras.ops``; TensorFlow is imported only on TensorFlow."""

from __future__ import annotations

import keras
import numpy as np


def tile_size(images) -> tuple[int, int]:
    """The static (height, width) of a batch of tiles (anchors and crops are made for it)."""
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        raise ValueError(f"Mask R-CNN needs tiles of a known size, not {tuple(images.shape)}")
    return int(height), int(width)


def sampling_step(model):
    """The optimizer's step count (the training targets' random draws follow it); 0 before
    the model is compiled."""
    optimizer = getattr(model, "optimizer", None)
    return 0 if optimizer is None else optimizer.iterations


def _backend() -> str:
    return keras.backend.backend()


def train_step(model, *args):
    """One optimizer step, as the backend's trainer calls it."""
    if _backend() == "jax":
        return _jax_train_step(model, *args)
    return _tf_train_step(model, *args)


def test_step(model, *args):
    """The losses of a batch, batch normalization in inference mode."""
    if _backend() == "jax":
        state, data = args
        trainable, non_trainable, metrics = state
        losses, _ = _stateless_losses(model, trainable, non_trainable, [], data, False)
        logs, metrics = _jax_record(model, metrics, losses)
        return logs, (trainable, non_trainable, metrics)
    data = args[0]
    return model.record(model.compute_losses(data[0], data[1], training=False))


def _tf_train_step(model, data):
    import tensorflow as tf

    images, targets = data[0], data[1]
    with tf.GradientTape() as tape:
        losses = model.compute_losses(images, targets, training=True)
        total = tf.add_n(list(losses.values()))
    variables = model.trainable_variables
    grads = tape.gradient(total, variables)
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    model.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
    return model.record(losses)


def _current(scope, variables, old):
    """The values ``variables`` took in a stateless ``scope`` (``old`` where not assigned)."""
    values = [scope.get_current_value(v) for v in variables]
    return [o if v is None else v for v, o in zip(values, old)]


def _stateless_losses(model, trainable, non_trainable, optimizer, data, training):
    mapping = [*zip(model.trainable_variables, trainable),
               *zip(model.non_trainable_variables, non_trainable)]
    if optimizer:
        mapping += list(zip(model.optimizer.variables, optimizer))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        losses = model.compute_losses(data[0], data[1], training=training)
    return losses, _current(scope, model.non_trainable_variables, non_trainable)


def _jax_record(model, metrics, losses):
    mapping = list(zip(model.metrics_variables, metrics))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        logs = model.record(losses)
    return logs, _current(scope, model.metrics_variables, metrics)


def _jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer, metrics = state

    def total(trainable, non_trainable):
        losses, updated = _stateless_losses(model, trainable, non_trainable, optimizer, data,
                                            True)
        return sum(losses.values()), (losses, updated)

    (_, (losses, non_trainable)), grads = jax.value_and_grad(total, has_aux=True)(
        trainable, non_trainable)
    trainable, optimizer = model.optimizer.stateless_apply(optimizer, grads, trainable)
    logs, metrics = _jax_record(model, metrics, losses)
    return logs, (trainable, non_trainable, optimizer, metrics)


def _compiled(model, height: int, width: int):
    if _backend() == "jax":
        import jax

        def infer(trainable, non_trainable, images):
            return model.stateless_call(trainable, non_trainable, images, training=False)[0]

        fn = jax.jit(infer)
        return lambda images: fn([v.value for v in model.trainable_variables],
                                 [v.value for v in model.non_trainable_variables], images)
    import tensorflow as tf

    spec = tf.TensorSpec((None, height, width, model.nbands), tf.float32)
    return tf.function(lambda x: model.call(x, training=False), input_signature=[spec],
                       jit_compile=False, autograph=False)


def detect(model, images) -> dict:
    """``model.call`` on a numpy batch through the compiled function of its tile size."""
    images = np.asarray(images, np.float32)
    key = images.shape[1:3]
    if key not in model._detect_fns:
        model._detect_fns[key] = _compiled(model, *key)
    outputs = model._detect_fns[key](images)
    return {name: np.asarray(value) for name, value in outputs.items()}

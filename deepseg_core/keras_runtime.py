"""Loading trained models (imports Keras; used by predict and crossval only)."""

from __future__ import annotations

from pathlib import Path

from .errors import DeepSegError


def load_model(registry, info: dict, weights: Path):
    """(model plugin, keras model) for a trained model described by its model.json."""
    import keras

    plugin = registry.get("model", info["model"])
    try:
        model = keras.saving.load_model(weights, custom_objects=plugin.custom_objects(),
                                        compile=False)
    except (OSError, ValueError) as exc:
        raise DeepSegError(f"{weights}: cannot load the trained model ({exc})") from None
    return plugin, model

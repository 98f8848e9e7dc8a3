"""deepseg_core.models.pretrained: weights files read by layer name, reports, band adaptation."""

import h5py
import keras
import numpy as np
import pytest

from deepseg_core.errors import DeepSegError
from deepseg_core.models.pretrained import adapt_bands, legacy_layers, load_weights


def tiny(nbands=3, nclasses=2, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, nbands), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    return keras.Model(inputs, keras.layers.Conv2D(nclasses, 1, name="logits")(x))


def test_adapting_bands_keeps_the_first_and_averages_into_extra_bands():
    kernel = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    five = adapt_bands(kernel, 5)
    np.testing.assert_allclose(five[:, :, :3], kernel * 3 / 5, rtol=1e-6)
    np.testing.assert_allclose(five[:, :, 3], kernel.mean(axis=2) * 3 / 5, rtol=1e-6)
    np.testing.assert_allclose(five[:, :, 4], kernel.mean(axis=2) * 3 / 5, rtol=1e-6)
    np.testing.assert_allclose(adapt_bands(kernel, 1), kernel[:, :, :1] * 3, rtol=1e-6)


def test_nested_legacy_groups_split_by_weight_name(tmp_path):
    path = tmp_path / "legacy.h5"
    with h5py.File(path, "w") as f:  # a Keras 2 file: one group per layer, nested model too
        f.attrs["layer_names"] = [b"rpn_model", b"dense_1", b"relu"]
        group = f.create_group("rpn_model")
        names = ["conv_a/kernel:0", "conv_a/bias:0", "conv_b/kernel:0"]
        group.attrs["weight_names"] = [n.encode() for n in names]
        for i, name in enumerate(names):
            group[name] = np.full((2,), i, np.float32)
        f.create_group("dense_1").attrs["weight_names"] = [b"dense_1/kernel:0"]
        f["dense_1"]["dense_1/kernel:0"] = np.ones((2, 2), np.float32)
        f.create_group("relu").attrs["weight_names"] = []
    with h5py.File(path, "r") as f:
        layers = legacy_layers(f)
    assert sorted(layers) == ["conv_a", "conv_b", "dense_1"]
    assert [v.tolist() for v in layers["conv_a"]] == [[0, 0], [1, 1]]


def test_a_nameless_keras3_weights_file_loads_by_position_and_says_so(tmp_path):
    source = tiny(seed=1)
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)
    report = load_weights(tiny(seed=2), str(path), 3)
    assert report.loaded == ["(all, by position)"]
    assert "stores no layer names: loaded by position" in report.lines()[1]


def test_a_model_file_fills_same_named_layers_and_reports_the_rest(tmp_path):
    source = tiny(nbands=4, nclasses=3, seed=1)
    path = tmp_path / "best.keras"
    source.save(path)
    target = tiny(nbands=3, nclasses=2, seed=2)
    report = load_weights(target, str(path), 3)
    assert report.loaded == ["stem", "stem_bn"]
    assert report.lines() == [
        f"weights {path}: loaded 2 layers, adapted 1, skipped 1, 0 model layers not in the "
        "file (left as initialized)",
        "  loaded: stem, stem_bn",
        "  adapted stem: 4 bands in the file, 3 in the model (the first 3 band kernels kept, "
        "scaled by 4/3)",
        "  skipped logits: shape (1, 1, 4, 3), (3,) in the file, (1, 1, 4, 2), (2,) in the "
        "model"]
    np.testing.assert_array_equal(target.get_layer("stem_bn").get_weights()[0],
                                  source.get_layer("stem_bn").get_weights()[0])


def test_a_file_without_a_matching_layer_is_an_error(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense_9"]
        f.create_group("dense_9").attrs["weight_names"] = [b"dense_9/kernel:0"]
        f["dense_9"]["dense_9/kernel:0"] = np.zeros((2, 2), np.float32)
    with pytest.raises(DeepSegError, match=f"model parameter weights: no layer of '{path}' "
                                           "matches a layer of the model by name and shape"):
        load_weights(tiny(), str(path), 3)


def test_an_unreadable_weights_file_names_it(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(DeepSegError, match=f"model parameter weights: cannot read '{path}'"):
        load_weights(tiny(), str(path), 3)

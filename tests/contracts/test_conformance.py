"""Conformance over the registry: every registered writer/reader pair round-trips a raster with
its georeference, nodata, colour table and class names; every model (semantic and instance)
builds and predicts a tiny tile."""

import numpy as np
import pytest
from affine import Affine

from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.plugins.manager import load_plugins

REGISTRY = load_plugins().registry
SUFFIX = {"gtiff": ".tif", "cog": ".tif", "kea": ".kea"}


@pytest.mark.parametrize("name", REGISTRY.names("writer"))
def test_every_writer_round_trips_through_a_reader(name, tmp_path):
    writer = REGISTRY.get("writer", name)
    path = tmp_path / f"out{SUFFIX.get(name, (writer.extensions or ('.tif',))[0])}"
    data = np.arange(40 * 56, dtype=np.uint8).reshape(1, 40, 56) % 4
    data[0, :3, :] = 255
    info = RasterInfo(56, 40, 1, "uint8", "EPSG:2193", Affine(0.5, 0, 1_750_000, 0, -0.5,
                                                               5_900_000), 255,
                      ("class",), {0: (0, 0, 0, 255), 1: (255, 0, 0, 255),
                                   2: (0, 255, 0, 255), 3: (0, 0, 255, 255)},
                      ("background", "a", "b", "c"), True)
    with writer.create(path, info) as sink:  # two windows: streaming writes
        sink.write(data[:, :20], Window(0, 0, 20, 56))
        sink.write(data[:, 20:], Window(20, 0, 20, 56))
    with REGISTRY.reader_for(path).open(path) as src:
        got = src.info
        assert np.array_equal(src.read(), data)
        assert np.array_equal(src.read(Window(10, 5, 8, 9)), data[:, 10:18, 5:14])
    from rasterio.crs import CRS

    assert CRS.from_user_input(got.crs) == CRS.from_epsg(2193)
    assert got.transform == info.transform and got.nodata == 255
    assert got.class_names[:4] == info.class_names
    for value in range(1, 4):
        assert got.colormap[value][:3] == info.colormap[value][:3]


@pytest.mark.parametrize("name", [n for n in REGISTRY.names("model")
                                  if REGISTRY.get("model", n).segmentation_type == "semantic"
                                  and getattr(REGISTRY.get("model", n), "trainable", True)])
def test_every_semantic_model_builds_and_predicts_a_tiny_tile(name):
    plugin = REGISTRY.get("model", name)
    params = {k: v for k, v in {"filters": 2, "depth": 1}.items() if k in plugin.defaults}
    model = plugin.build(5, 3, 32, params)
    results = plugin.predict_tiles(model, np.zeros((2, 32, 32, 5), np.float32))
    assert len(results) == 2 and results[0].probabilities.shape == (32, 32, 3)
    assert np.allclose(results[0].probabilities.sum(-1), 1, atol=1e-5)


TINY_INSTANCE = {"maskrcnn": {"backbone": "resnet_tiny", "fpn_channels": 16, "head_fc": 32,
                              "mask_channels": 8, "anchor_scales": [8, 16, 32, 64, 128],
                              "rpn_train_anchors": 64, "pre_nms_limit": 300,
                              "proposals_train": 100, "proposals_infer": 60,
                              "rois_per_image": 16}}


@pytest.mark.parametrize("name", [n for n in REGISTRY.names("model")
                                  if REGISTRY.get("model", n).segmentation_type == "instance"])
def test_every_instance_model_builds_and_predicts_a_tiny_tile(name):
    from deepseg_core.contracts.model import Instance, InstanceModel, contract_problem

    plugin = REGISTRY.get("model", name)
    assert isinstance(plugin, InstanceModel) and contract_problem(plugin) is None
    params = TINY_INSTANCE.get(name, {})
    plugin.validate(5, 3, 64, params)
    model = plugin.build(5, 3, 64, params)
    tiles = np.random.default_rng(0).normal(size=(2, 64, 64, 5)).astype(np.float32)
    results = plugin.predict_tiles(model, tiles)
    assert len(results) == 2
    for result in results:
        assert all(isinstance(i, Instance) and 0 <= i.score <= 1 and 1 <= i.class_id < 3
                   for i in result.instances)

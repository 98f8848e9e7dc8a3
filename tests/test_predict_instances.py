"""Instance prediction through the predict stage: stitching across tiles, shards and merge."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import tinymodels
from rasterio.features import shapes
from scenes import squares_scene
from test_predict import experiment, fake_training

from deepseg_core import predict
from deepseg_core.plugins import load_plugins
from deepseg_core.stats import normalizer


@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra=[("tinymodels", tinymodels)]).registry


def whole_image_blobs(model, info, image):
    """The blobs the model finds over the whole raster at once (map polygons)."""
    with rasterio.open(image) as src:
        data, transform = src.read(), src.transform
    x = normalizer(info["stats"])(np.moveaxis(data, 0, -1))
    bright = (model.predict(x[None], verbose=0)[0, ..., 0] > 1.0).astype("uint8")
    return [g for g, _ in shapes(bright, mask=bright.astype(bool), transform=transform)]


def test_instances_straddling_tiles_come_out_once_and_shards_agree(tmp_path, registry):
    from shapely.geometry import shape

    img, _, _ = squares_scene(tmp_path, size=150, nsquares=14, seed=4)
    exp = experiment(tmp_path, img, model="tinyblobs", segmentation_type="instance",
                     tilesize=64, overlap=32, classes=[{"name": "background"}, {"name": "blob"}],
                     predict={"output": "predictions/blobs.tif"})
    model, info = fake_training(exp, registry, img)
    out = predict.run(exp, registry, progress=False)
    frame = gpd.read_file(out.with_suffix(".gpkg"))
    expected = [shape(g) for g in whole_image_blobs(model, info, img)]
    assert len(frame) == len(expected) > 5
    assert sorted(round(a, 3) for a in frame.geometry.area) == \
        sorted(round(g.area, 3) for g in expected)
    assert set(frame["class_name"]) == {"blob"}
    with rasterio.open(out) as src:
        ids = src.read(1)
        assert src.dtypes[0] == "uint32" and src.nodata == 0
    assert set(np.unique(ids)) - {0} == set(frame["instance_id"])
    single_ids, single_frame = ids.copy(), frame
    out.unlink()
    out.with_suffix(".gpkg").unlink()
    for i in range(3):
        predict.run(exp, registry, shard=f"{i}/3", progress=False)
    predict.run(exp, registry, merge=True, progress=False)
    merged = gpd.read_file(out.with_suffix(".gpkg"))
    assert sorted(merged.geometry.area.round(3)) == sorted(single_frame.geometry.area.round(3))
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(1) > 0, single_ids > 0)
    assert not list(out.parent.glob("*.part-*"))


def test_an_interrupted_instance_shard_resumes_after_its_last_finished_row(
        tmp_path, registry, capsys):
    import json

    img, _, _ = squares_scene(tmp_path, size=150, nsquares=14, seed=4)
    exp = experiment(tmp_path, img, model="tinyblobs", segmentation_type="instance",
                     tilesize=64, overlap=32, classes=[{"name": "background"}, {"name": "blob"}],
                     predict={"output": "predictions/blobs.tif"})
    fake_training(exp, registry, img)
    out = predict.run(exp, registry, progress=False)
    single = gpd.read_file(out.with_suffix(".gpkg"))
    with rasterio.open(out) as src:
        single_ids = src.read(1)
    out.unlink()
    out.with_suffix(".gpkg").unlink()
    # 16 tiles in 4 rows; shard 0/2 owns rows 0-1 and is stopped in its second row
    with pytest.raises(KeyboardInterrupt):
        predict.run(exp, registry, shard="0/2", progress=False, stop_after=6)
    [progress] = out.parent.glob("*.progress.json")
    assert json.loads(progress.read_text())["tiles"] == 4  # row 0 committed, row 1 not
    capsys.readouterr()
    predict.run(exp, registry, shard="0/2", progress=False)
    said = capsys.readouterr().out
    assert "resuming shard 0/2 after 4 tiles" in said and "4 tiles predicted" in said
    # a progress record from other settings is not trusted: shard 1 starts afresh
    with pytest.raises(KeyboardInterrupt):
        predict.run(exp, registry, shard="1/2", progress=False, stop_after=6)
    [progress] = out.parent.glob("*.progress.json")
    state = json.loads(progress.read_text())
    progress.write_text(json.dumps({**state, "key": {**state["key"], "tilesize": 32}}))
    predict.run(exp, registry, shard="1/2", progress=False)
    assert "resuming" not in capsys.readouterr().out
    predict.run(exp, registry, merge=True, progress=False)
    merged = gpd.read_file(out.with_suffix(".gpkg"))
    assert len(merged) == len(single) > 5
    assert sorted(merged.geometry.area.round(3)) == sorted(single.geometry.area.round(3))
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(1) > 0, single_ids > 0)
    assert not [p.name for p in out.parent.iterdir() if ".part-" in p.name]

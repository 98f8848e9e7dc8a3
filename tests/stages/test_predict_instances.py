"""Instance prediction through the predict stage: stitching across tiles, shards and merge."""

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.features import shapes

from deepseg_core.data.bandstats import normalizer
from deepseg_core.stages import predict
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, squares_scene


def whole_image_blobs(model, info, image):
    """The blobs the model finds over the whole raster at once (map polygons)."""
    with rasterio.open(image) as src:
        data, transform = src.read(), src.transform
    x = normalizer(info.stats)(np.moveaxis(data, 0, -1))
    bright = (model.predict(x[None], verbose=0)[0, ..., 0] > 1.0).astype("uint8")
    return [g for g, _ in shapes(bright, mask=bright.astype(bool), transform=transform)]


def test_instances_straddling_tiles_come_out_once_and_shards_agree(tmp_path, registry):
    from shapely.geometry import shape

    img, _, _ = squares_scene(tmp_path, size=150, nsquares=14, seed=4)
    exp = predict_experiment(tmp_path, img, model="tinyblobs", segmentation_type="instance",
                             tilesize=64, overlap=32,
                             classes=[{"name": "background"}, {"name": "blob"}],
                             predict={"output": "predictions/blobs.tif"})
    model, info = save_untrained(exp, registry, img)
    out = predict.run(exp, registry)
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
        predict.run(exp, registry, shard=f"{i}/3")
    predict.run(exp, registry, merge=True)
    merged = gpd.read_file(out.with_suffix(".gpkg"))
    assert sorted(merged.geometry.area.round(3)) == sorted(single_frame.geometry.area.round(3))
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(1) > 0, single_ids > 0)
    assert not list(out.parent.glob("*.part-*"))

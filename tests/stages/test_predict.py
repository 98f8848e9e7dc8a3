"""Predict stage: seamless tile cores, nodata, resume, shards + merge, outputs, bad input."""

import json

import numpy as np
import pytest
import rasterio

from deepseg_core.data.bandstats import normalizer
from deepseg_core.errors import DeepSegError
from deepseg_core.stages import predict
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, squares_scene, write_raster


def whole_image(model, info, image_path):
    """Reference: the model over the whole raster in one pass (nodata where invalid)."""
    with rasterio.open(image_path) as src:
        data = src.read()
        nodata = src.nodata
    valid = ~np.all(data == nodata, axis=0) if nodata is not None else np.ones(data.shape[1:],
                                                                                bool)
    image = normalizer(info.stats)(np.moveaxis(data, 0, -1))
    image[~valid] = 0
    classes = np.argmax(model.predict(image[None], verbose=0)[0], axis=-1).astype(np.uint8)
    classes[~valid] = 255
    return classes


def read(path):
    """Band 1 and the metadata of a written raster."""
    with rasterio.open(path) as src:
        meta = {"crs": src.crs, "transform": src.transform, "colormap": src.colormap(1),
                "tags": src.tags(1)}
        return src.read(1), meta


def predicted_equals_one_pass(tmp_path, registry, image, **settings):
    """Predict ``image`` with an untrained model; the classes equal the model's one pass over
    the whole image. Returns them and the output's metadata."""
    exp = predict_experiment(tmp_path, image, **settings)
    model, info = save_untrained(exp, registry, image)
    got, src = read(predict.run(exp, registry))
    assert np.array_equal(got, whole_image(model, info, image))
    return got, src


def test_tile_cores_equal_one_pass_over_the_whole_image(tmp_path, registry):
    data = np.random.default_rng(1).integers(0, 255, (3, 150, 133)).astype("uint8")
    image = write_raster(tmp_path / "img.tif", data)
    got, src = predicted_equals_one_pass(tmp_path, registry, image)
    with rasterio.open(image) as ref:
        assert src["crs"] == ref.crs and src["transform"] == ref.transform
    assert src["colormap"][1][:3] == (255, 0, 0)
    assert json.loads(src["tags"]["CLASS_NAMES"]) == ["background", "a", "b"]


def test_real_landsat_scene_keeps_its_nodata_border(shared_data, tmp_path, registry):
    image = shared_data / "rasterio" / "RGB.byte.tif"
    got, src = predicted_equals_one_pass(tmp_path, registry, image, tilesize=128, overlap=16)
    with rasterio.open(image) as ref:
        border = np.all(ref.read() == 0, axis=0)
        assert src["transform"] == ref.transform and src["crs"] == ref.crs
    assert border.any() and (got[border] == 255).all() and (got[~border] != 255).all()


@pytest.mark.parametrize("blend", [False, True])
def test_shards_and_merge_equal_a_single_run(tmp_path, registry, blend):
    img, _, _ = squares_scene(tmp_path, size=140)
    exp = predict_experiment(tmp_path, img, predict={"blend": blend})
    save_untrained(exp, registry, img)
    single = read(predict.run(exp, registry))[0].copy()
    out = predict.output_path(exp)
    out.unlink()
    for i in range(3):
        predict.run(exp, registry, shard=f"{i}/3")
    assert not out.exists()
    predict.run(exp, registry, merge=True)
    assert np.array_equal(read(out)[0], single)


def test_blending_agrees_with_cores_away_from_seams(tmp_path, registry):
    data = np.random.default_rng(5).integers(0, 255, (3, 100, 100)).astype("uint8")
    image = write_raster(tmp_path / "img.tif", data)
    exp = predict_experiment(tmp_path, image, predict={"blend": True, "probabilities": "float32"})
    model, info = save_untrained(exp, registry, image)
    out = predict.run(exp, registry)
    # tiles differ from the one-pass result only within 2 px of their edges, where blending
    # weights are smallest: the blend agrees almost everywhere
    agreement = (read(out)[0] == whole_image(model, info, image)).mean()
    assert agreement > 0.99, agreement
    with rasterio.open(out.with_name("prediction_probabilities.tif")) as src:
        probs = src.read()
    assert probs.shape == (3, 100, 100) and np.allclose(probs.sum(axis=0), 1, atol=1e-5)


@pytest.mark.parametrize("case, message", [
    ("untrained", "no trained model"),
    ("classes", "was trained with"),
    ("bands", "stack to 4 bands"),
    ("shard", "expected 'i/N'"),
    ("merge", "no prediction shards"),
    ("unwritable", "cannot write"),
])
def test_bad_input(tmp_path, registry, case, message):
    img, _, _ = squares_scene(tmp_path, size=64)
    exp = predict_experiment(tmp_path, img)
    if case != "untrained":
        save_untrained(exp, registry, img)
    kwargs = {}
    if case == "classes":
        exp = predict_experiment(tmp_path, img, classes=[{"name": "x"}, {"name": "y"}])
    elif case == "bands":
        four = write_raster(tmp_path / "four.tif", np.ones((4, 64, 64), np.uint8))
        exp = predict_experiment(tmp_path, img, predict={"images": [{"path": str(four)}]})
    elif case == "shard":
        kwargs["shard"] = "3"
    elif case == "merge":
        kwargs["merge"] = True
    elif case == "unwritable":
        (tmp_path / "blocker").write_text("a file")
        exp = predict_experiment(tmp_path, img,
                                 predict={"output": str(tmp_path / "blocker" / "p.tif")})
    with pytest.raises(DeepSegError, match=message):
        predict.run(exp, registry, **kwargs)


def test_vectors_carry_class_names_and_the_raster_area(tmp_path, registry):
    import geopandas as gpd

    img, _, _ = squares_scene(tmp_path, size=96)
    exp = predict_experiment(tmp_path, img,
                             predict={"vectorize": {"enabled": True, "skip_classes": []}})
    save_untrained(exp, registry, img)
    out = predict.run(exp, registry)
    frame = gpd.read_file(out.with_suffix(".gpkg"))
    raster = read(out)[0]
    assert frame.geometry.is_valid.all() and frame.crs.to_epsg() == 2193
    assert set(frame["class_name"]) <= {"background", "a", "b"}
    for value, name in enumerate(["background", "a", "b"]):
        area = frame.loc[frame["class_name"] == name].geometry.area.sum()
        assert area == pytest.approx((raster == value).sum() * 0.25)

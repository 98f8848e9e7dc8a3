"""Streaming vectorization: block by block, the same polygons as a whole-raster pass."""

from collections import Counter

import numpy as np
import pyogrio
import pytest
import rasterio.features
import shapely
from affine import Affine
from shapely.geometry import shape

from deepseg_core.contracts.raster import RasterInfo
from deepseg_core.geo.vectorize import vectorize_raster

TRANSFORM = Affine(0.5, 0, 1000, 0, -0.5, 2000)
NAMES = ("background", "crown", "road", "water", "field")


def class_raster():
    """100 x 80: shapes spanning many 16 px blocks, one with a hole, a U, stripes, specks."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:100, :80]
    a = np.zeros((100, 80), np.uint8)
    a[(yy - 50) ** 2 + (xx - 40) ** 2 < 30 ** 2] = 1
    a[(yy - 50) ** 2 + (xx - 40) ** 2 < 10 ** 2] = 0  # a hole across block edges
    a[10:90, 5:9] = 2
    a[(yy % 7 == 0) & (xx > 60)] = 3
    a[60:95, 50:52] = 4  # a U whose arms meet only in the last row of blocks
    a[93:95, 50:75] = 4
    a[60:95, 73:75] = 4
    a[rng.random(a.shape) < 0.05] = 2
    a[:3, :3] = 255  # nodata
    return a


def info(nodata=255):
    return RasterInfo(80, 100, 1, "uint8", crs="EPSG:32633", transform=TRANSFORM, nodata=nodata)


def whole_raster(a, skip=(0, 255)):
    valid = ~np.isin(a, skip)
    return [(shape(g), int(v)) for g, v in rasterio.features.shapes(a, mask=valid,
                                                                    transform=TRANSFORM)]


@pytest.mark.parametrize("block_size", [16, 23])
def test_same_polygons_as_a_whole_raster_pass(tmp_path, block_size):
    a = class_raster()
    reads = []

    def read_block(window):
        reads.append(window)
        return a[window.slices][None]  # band-first, like RasterSource.read

    summary = vectorize_raster(read_block, info(), tmp_path / "v.gpkg", NAMES,
                               block_size=block_size)
    assert max(w.height * w.width for w in reads) <= block_size ** 2
    frame = pyogrio.read_dataframe(tmp_path / "v.gpkg", layer="classes")
    reference = whole_raster(a)
    assert len(frame) == len(reference)
    assert Counter(frame["class_id"]) == Counter(v for _, v in reference) == summary["polygons"]
    for value in range(1, 5):
        assert frame.area[frame["class_id"] == value].sum() == (a == value).sum() * 0.25
        assert summary["area"][value] == (a == value).sum() * 0.25
    assert frame.geometry.is_valid.all() and (frame.geom_type == "Polygon").all()
    assert frame.crs.to_epsg() == 32633
    assert set(frame["class_name"]) == {"crown", "road", "water", "field"}
    assert np.allclose(frame["area"], frame.area)
    tree = shapely.STRtree(frame.geometry.to_numpy())
    for geom, value in reference:  # every polygon found, the same shape and class
        match = [i for i in tree.query(geom) if frame.geometry.iloc[i].equals(geom)]
        assert len(match) == 1 and frame["class_id"].iloc[match[0]] == value


def test_min_area_and_skip(tmp_path):
    a = class_raster()
    summary = vectorize_raster(lambda w: a[w.slices], info(), tmp_path / "v.gpkg", NAMES,
                               skip=(0, 3), min_area=1.0, block_size=16)
    reference = [(g, v) for g, v in whole_raster(a, (0, 3, 255)) if g.area >= 1.0]
    assert summary["polygons"] == Counter(v for _, v in reference)
    frame = pyogrio.read_dataframe(tmp_path / "v.gpkg")
    assert frame["area"].min() >= 1.0 and 3 not in set(frame["class_id"])
    assert summary["polygons"][2] < Counter(v for _, v in whole_raster(a))[2]  # specks gone


def test_nodata_is_skipped_and_classes_named_by_number(tmp_path):
    a = class_raster()
    summary = vectorize_raster(lambda w: a[w.slices], info(nodata=1), tmp_path / "v.gpkg",
                               block_size=16)
    frame = pyogrio.read_dataframe(tmp_path / "v.gpkg")
    assert 1 not in summary["polygons"] and 255 in summary["polygons"]
    assert set(frame["class_name"]) == {"2", "3", "4", "255"}


def test_simplify_keeps_the_area_close(tmp_path):
    a = class_raster()
    exact = vectorize_raster(lambda w: a[w.slices], info(), tmp_path / "e.gpkg", NAMES,
                             block_size=16)
    simple = vectorize_raster(lambda w: a[w.slices], info(), tmp_path / "s.gpkg", NAMES,
                              simplify=0.5, block_size=16)
    assert simple["polygons"] == exact["polygons"]
    frame = pyogrio.read_dataframe(tmp_path / "s.gpkg")
    assert frame.geometry.is_valid.all()
    exact_frame = pyogrio.read_dataframe(tmp_path / "e.gpkg")
    for value in exact["area"]:  # a simplified edge moves by at most the tolerance
        perimeter = exact_frame.length[exact_frame["class_id"] == value].sum()
        assert abs(simple["area"][value] - exact["area"][value]) <= 0.5 * perimeter
    assert abs(simple["area"][1] - exact["area"][1]) < 0.05 * exact["area"][1]
    vertices = shapely.get_num_coordinates(frame.geometry.to_numpy()).sum()
    assert vertices < shapely.get_num_coordinates(exact_frame.geometry.to_numpy()).sum()


def test_empty_raster_writes_an_empty_layer(tmp_path):
    a = np.zeros((40, 40), np.uint8)
    raster = RasterInfo(40, 40, 1, "uint8", crs="EPSG:32633", transform=TRANSFORM)
    summary = vectorize_raster(lambda w: a[w.slices], raster, tmp_path / "v.gpkg", block_size=16)
    assert summary["polygons"] == {}
    assert pyogrio.read_info(tmp_path / "v.gpkg", layer="classes")["features"] == 0

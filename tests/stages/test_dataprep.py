"""Dataprep: rasterization, stacking, tiles, statistics, folds, the store and its failures."""

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.config.schema import ClassSpec, Labels
from deepseg_core.contracts.raster import Window
from deepseg_core.data.folds import overlap_pairs
from deepseg_core.data.stack import Grid
from deepseg_core.errors import DeepSegError
from deepseg_core.stages import dataprep
from deepseg_core.stages.dataprep.labels import VectorLabels
from deepseg_core.store import Store
from deepseg_core.store.identity import store_path
from tests.support.synthetic import squares_scene, write_experiment, write_raster


def run_dataprep(path, registry):
    exp = load_experiment(path)
    return exp, dataprep.run(exp, registry)


def test_rasterizing_real_polygons_reproduces_the_reference_raster(shared_data):
    import rasterio

    ref_path = shared_data / "rsgislib" / "aber_osgb_multi_polys_rasters.tif"
    with rasterio.open(ref_path) as ref:
        expected = ref.read(1)
        grid = Grid(ref.crs.to_wkt(), ref.transform, ref.width, ref.height)
    cfg = Labels(path=str(shared_data / "rsgislib" / "aber_osgb_multi_polys.geojson"),
                 class_field="val")
    classes = [ClassSpec(name=f"c{v}", value=v) for v in range(5)]
    labels = VectorLabels(cfg, classes, grid, instance=False)
    burned, covered = labels.read(Window(0, 0, grid.height, grid.width))
    assert np.array_equal(burned, expected)
    assert covered.sum() == (expected > 0).sum()
    # window by window gives the same pixels
    part, _ = labels.read(Window(100, 200, 64, 64))
    assert np.array_equal(part, expected[100:164, 200:264])


def test_real_multiclass_mosaic_store_matches_independent_rasterization(shared_data, tmp_path,
                                                                      registry):
    import geopandas as gpd
    from rasterio.features import rasterize

    tiles = shared_data / "rsgislib" / "s2_over_tiles"
    gpkg = shared_data / "rsgislib" / "classification" / "cls_poly_smpls.gpkg"
    names = ["forest", "grass", "urban", "water"]
    classes = [{"name": "background"}] + [{"name": n, "value": f"cls_{n}_smpls"} for n in names]
    path = write_experiment(tmp_path, str(tiles / "*.tif"), gpkg, nbands=10, tilesize=64,
                            overlap=16, folds=3, classes=classes,
                            labels={"path": str(gpkg), "outside": "ignore",
                                    "class_field": None})
    exp, store_path = run_dataprep(path, registry)
    with Store(store_path) as store:
        counts = store.class_counts()
        attrs = store.attrs
        assert attrs["nbands"] == 10 and store.file["images"].dtype == np.uint16
        assert store.file["images"].chunks == (1, 64, 64, 10)
    # independent: burn every layer over the whole mosaic grid at once
    from affine import Affine

    transform = Affine.from_gdal(*attrs["transform"])
    shapes = []
    for value, name in enumerate(names, start=1):
        frame = gpd.read_file(gpkg, layer=f"cls_{name}_smpls")
        shapes += [(g, value) for g in frame.geometry]
    burned = rasterize(shapes, out_shape=(attrs["height"], attrs["width"]), transform=transform,
                       fill=0, dtype="uint8")
    expected = np.bincount(burned.ravel(), minlength=5)
    assert counts[1:].tolist() == expected[1:].tolist()
    assert counts[0] == 0  # outside: ignore


def test_statistics_equal_numpy_over_valid_pixels(tmp_path, registry):
    rng = np.random.default_rng(3)
    data = rng.normal(1000, 250, (3, 150, 170)).astype("float32")
    data[:, 10:40, 20:90] = -9999  # nodata block
    img = write_raster(tmp_path / "float.tif", data, nodata=-9999)
    label = write_raster(tmp_path / "label.tif", (data[:1] > 1000).astype("uint8"))
    path = write_experiment(tmp_path, img, None, labels={"path": None, "raster": str(label),
                                                         "class_field": None},
                            classes=[{"name": "background"}, {"name": "high"}])
    # 32 px tiles over 150 x 170 px: dozens of chunks, never the whole raster at once
    _, store_path = run_dataprep(path, registry)
    valid = data[0] != -9999
    with Store(store_path) as store:
        stats = store.stats()
        counts = store.class_counts()
    assert stats["count"][0] == valid.sum()  # each valid pixel exactly once
    for b in range(3):
        values = data[b][valid].astype(np.float64)
        assert stats["mean"][b] == pytest.approx(values.mean(), rel=1e-6)
        assert stats["std"][b] == pytest.approx(values.std(), rel=1e-6)
        assert stats["min"][b] == values.min() and stats["max"][b] == values.max()
    assert counts.tolist() == [int((~(data[0] > 1000) & valid).sum()),
                               int(((data[0] > 1000) & valid).sum())]


def test_tiles_follow_the_grid_formula_and_folds_never_split_overlaps(tmp_path, registry):
    img, gpkg, _ = squares_scene(tmp_path, size=150, nsquares=60)
    path = write_experiment(tmp_path, img, gpkg, folds=3)
    _, store_path = run_dataprep(path, registry)
    stride, expected = 32 - 8, []
    origins = list(range(0, 150 - 32, stride)) + [150 - 32]
    expected = {(r, c) for r in origins for c in origins}
    with Store(store_path) as store:
        tiles = store.tiles
        gts = tiles["geotransform"]
    got = {(int(r), int(c)) for r, c in zip(tiles["row"], tiles["col"])}
    assert got <= expected and len(got) == len(tiles)
    assert len(got) >= len(expected) - 5  # only tiles without any square are skipped
    assert np.allclose(gts[:, 0], 1_750_000 + tiles["col"] * 0.5)
    assert np.allclose(gts[:, 3], 5_900_000 - tiles["row"] * 0.5)
    folds = tiles["fold"]
    assert set(folds[folds >= 0]) == {0, 1, 2}
    for a, b in overlap_pairs(tiles["row"], tiles["col"], 32):
        assert folds[a] < 0 or folds[b] < 0 or folds[a] == folds[b]


def test_store_is_reused_then_rebuilt_when_a_setting_changes(tmp_path, registry, capsys):
    img, gpkg, _ = squares_scene(tmp_path)
    path = write_experiment(tmp_path, img, gpkg)
    _, first = run_dataprep(path, registry)
    _, again = run_dataprep(path, registry)
    assert again == first and "reusing store" in capsys.readouterr().out
    changed = write_experiment(tmp_path, img, gpkg, overlap=4)
    _, other = run_dataprep(changed, registry)
    assert other != first and other.exists()


def test_corrupt_store_is_detected_and_rebuilt(tmp_path, registry, capsys):
    """A store named by its settings hash is dataprep's own: rebuilt when unreadable (one
    named by store.path is refused unless store.replace: tests/store/test_integrity.py)."""
    img, gpkg, _ = squares_scene(tmp_path)
    path = write_experiment(tmp_path, img, gpkg)
    exp = load_experiment(path)
    target = store_path(exp)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not an hdf5 file")
    _, built = run_dataprep(path, registry)
    assert "rebuilding" in capsys.readouterr().out
    with Store(built) as store:
        assert store.attrs["complete"]


def test_instance_mode_on_real_trees_gives_one_id_per_crown(shared_data, tmp_path, registry):
    import geopandas as gpd
    import pandas as pd
    import rasterio
    from shapely.geometry import box

    tif = shared_data / "deepforest" / "OSBS_029.tif"
    boxes = pd.read_csv(shared_data / "deepforest" / "OSBS_029.csv")
    with rasterio.open(tif) as src:
        t, crs = src.transform, src.crs
    polys = [box(*(t @ (r.xmin, r.ymax)), *(t @ (r.xmax, r.ymin))) for r in boxes.itertuples()]
    frame = gpd.GeoDataFrame({"label": boxes["label"]}, geometry=polys, crs=crs)
    frame.to_file(tmp_path / "trees.gpkg", driver="GPKG")
    path = write_experiment(tmp_path, tif, tmp_path / "trees.gpkg", tilesize=128, overlap=32,
                            segmentation_type="instance", model={"name": "maskrcnn"},
                            labels={"class_field": "label"},
                            classes=[{"name": "background"}, {"name": "tree", "value": "Tree"}])
    exp = load_experiment(path)
    store_path = dataprep.run(exp, registry)
    with Store(store_path) as store:
        ids = set()
        for i in range(len(store)):
            ids |= set(np.unique(store.labels[i]).tolist())
        classes = store.instance_classes()
    ids.discard(0)
    assert len(boxes) == 61 and len(ids) == 61
    assert set(classes[1:].tolist()) == {1}


@pytest.mark.parametrize("case, message", [
    ("nbands", "nbands is 4 but the images stack to 3"),
    ("no_overlap", "do not overlap"),
    ("field", "has no field 'klass'"),
    ("value", "value 'circle' is not a class"),
    ("padding", "larger than the raster"),
    ("crs", "another CRS than the grid"),
    ("truncated", "scene.tif"),
    ("unwritable", "cannot write"),
])
def test_bad_input_gives_a_clear_error_and_no_store(tmp_path, registry, case, message):
    import geopandas as gpd
    from shapely.geometry import box

    img, gpkg, _ = squares_scene(tmp_path)
    over = {}
    if case == "nbands":
        over["nbands"] = 4
    elif case == "no_overlap":
        far = gpd.GeoDataFrame({"class": ["square"]}, geometry=[box(0, 0, 10, 10)],
                               crs="EPSG:2193")
        far.to_file(tmp_path / "far.gpkg", driver="GPKG")
        over["labels"] = {"path": str(tmp_path / "far.gpkg")}
    elif case == "field":
        over["labels"] = {"class_field": "klass"}
    elif case == "value":
        frame = gpd.read_file(gpkg)
        frame.loc[0, "class"] = "circle"
        frame.to_file(gpkg, driver="GPKG")
    elif case == "padding":
        over.update(tilesize=256, overlap=8, padding=False)
    elif case == "crs":
        data = np.full((3, 50, 50), 9, np.uint8)
        second = write_raster(tmp_path / "other.tif", data, crs="EPSG:32760")
        over.update(images=[{"path": str(img)}, {"path": str(second)}], nbands=6)
    elif case == "truncated":
        raw = img.read_bytes()
        img.write_bytes(raw[: len(raw) // 3])
    elif case == "unwritable":
        (tmp_path / "blocker").write_text("a file, not a folder")
        over["store"] = {"path": str(tmp_path / "blocker" / "store.h5")}
    path = write_experiment(tmp_path, img, gpkg, **over)
    with pytest.raises(DeepSegError, match=message):
        run_dataprep(path, registry)
    assert list(tmp_path.rglob("*.h5*")) == []


def test_invalid_geometries_are_repaired_and_empty_ones_reported(tmp_path, registry):
    import geopandas as gpd
    from shapely.geometry import Polygon

    img, gpkg, _ = squares_scene(tmp_path)
    frame = gpd.read_file(gpkg)
    x0, y0, x1, y1 = frame.geometry.iloc[0].bounds
    bowtie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # self-intersecting
    extra = gpd.GeoDataFrame({"class": ["square", "square"]},
                             geometry=[bowtie, Polygon()], crs=frame.crs)
    frame = gpd.GeoDataFrame(
        {"class": list(frame["class"]) + list(extra["class"])},
        geometry=list(frame.geometry) + list(extra.geometry), crs=frame.crs)
    frame.to_file(gpkg, driver="GPKG")
    path = write_experiment(tmp_path, img, gpkg)
    with pytest.warns(UserWarning) as caught:
        _, store_path = run_dataprep(path, registry)
    messages = " ".join(str(w.message) for w in caught)
    assert "1 invalid geometries repaired" in messages and "1 empty geometries" in messages
    assert store_path.exists()

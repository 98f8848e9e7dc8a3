"""Several training scenes: tiled inside each scene only, folds over tiles and scenes."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from deepseg_core.config import load_experiment
from deepseg_core.contracts.raster import Window
from deepseg_core.errors import DeepSegError
from deepseg_core.stages import crossval, dataprep
from deepseg_core.store import Store
from tests.support.synthetic import squares_scene, write_experiment

X0, Y0 = 1_750_000, 5_900_000


def two_scenes(folder, distance_m, sizes=(96, 64), shared_labels=False, nsquares=(12, 12),
               **overrides):
    """An experiment over two squares scenes ``distance_m`` apart (east-west)."""
    a = squares_scene(folder / "a", size=sizes[0], seed=1, name="a", origin=(X0, Y0),
                      nsquares=nsquares[0])
    b = squares_scene(folder / "b", size=sizes[1], seed=2, name="b", nsquares=nsquares[1],
                      origin=(X0 + distance_m, Y0 - 1000))
    scenes = [{"name": "north", "images": [str(a[0])]}, {"name": "south", "images": str(b[0])}]
    labels = {"path": str(a[1]), "class_field": "class"}
    if shared_labels:  # one label file for both scenes
        both = pd.concat([gpd.read_file(a[1]), gpd.read_file(b[1])])
        both.to_file(folder / "both.gpkg", layer="squares", driver="GPKG")
        labels["path"] = str(folder / "both.gpkg")
    else:
        scenes[1]["labels"] = {"path": str(b[1]), "class_field": "class"}
    path = write_experiment(folder, a[0], a[1], name=f"two{distance_m}", images=None,
                            scenes=scenes, labels=labels, **overrides)
    return load_experiment(path)


def build(exp, registry):
    path = dataprep.run(exp, registry)
    return Store(path)


def test_store_size_and_tiles_do_not_depend_on_the_distance(tmp_path, registry, capsys):
    sizes, counts = [], []
    for distance in (100, 200_000):  # 100 m and 200 km: 400,000 px of 0.5 m between them
        exp = two_scenes(tmp_path / f"d{distance}", distance, shared_labels=True)
        with build(exp, registry) as store:
            counts.append(np.bincount(store.tiles["scene"]).tolist())
            sizes.append(store.path.stat().st_size)
            frame = store.attrs["width"]
            south = store.tiles[store.tiles["scene"] == 1]
            image, _, _ = store.tile(int(np.flatnonzero(store.tiles["scene"] == 1)[0]))
            gt = south["geotransform"][0]
            with rasterio.open(exp.scenes[1].images[0].path) as src:  # the tile's pixels
                col, row = ~src.transform @ (gt[0], gt[3])
                window = Window(round(row), round(col), 32, 32)
                np.testing.assert_array_equal(np.moveaxis(image, -1, 0), src.read(
                    window=rasterio.windows.Window(window.col_off, window.row_off, 32, 32)))
        assert frame > distance / 0.5  # the frame spans the distance, the tiles do not
    # 96 px: 4 x 4 tiles of 32 px with 8 px overlap (one without labels); 64 px: 3 x 3
    assert counts == [[15, 9], [15, 9]]
    assert abs(sizes[0] - sizes[1]) < 2048  # the same tiles; only attribute digits differ
    printed = capsys.readouterr().out
    assert "scenes: north=15, south=9 tiles" in printed


def test_folds_are_balanced_over_tiles_and_scenes(tmp_path, registry, capsys):
    exp = two_scenes(tmp_path, 5_000, sizes=(320, 192), nsquares=(300, 110), folds=4)
    with build(exp, registry) as store:
        tiles = store.tiles
        table = {(s, f): int(np.sum((tiles["scene"] == s) & (tiles["fold"] == f)))
                 for s in (0, 1) for f in range(4)}
    per_fold = [table[0, f] + table[1, f] for f in range(4)]
    print(f"tiles per fold and scene: {table}; per fold {per_fold}")
    assert all(table[0, f] > 0 and table[1, f] > 0 for f in range(4))  # both scenes in each
    assert max(per_fold) - min(per_fold) <= 0.35 * np.mean(per_fold)


def test_one_scene_per_fold_when_asked(tmp_path, registry):
    exp = two_scenes(tmp_path, 5_000, folds=2, fold_by="scenes")
    with build(exp, registry) as store:
        tiles = store.tiles
        for scene in (0, 1):
            assert len(set(tiles["fold"][tiles["scene"] == scene])) == 1
        assert set(tiles["fold"]) == {0, 1}


@pytest.mark.parametrize("settings,message", [
    ({"folds": 3, "fold_by": "scenes"}, "folds: 3 with fold_by: scenes needs at least 3 "
                                        "scenes, the experiment has 2: the data allows at "
                                        "most 2 folds"),
    ({"folds": 40}, "folds: 40 leaves 33 fold\\(s\\) without tiles \\(fold\\(s\\) 7, 8, 9, "
                    "...; tiles per fold: ...; 24 tiles in 2 scenes, 17 of them buffer "
                    "tiles\\): the data allows at most 7 folds"),
    ({"folds": 2, "training": {"validation_folds": [2]}},
     "training.validation_folds: \\[2\\] not in 0..1"),
])
def test_fold_settings_the_data_cannot_fill_are_errors(tmp_path, registry, settings, message):
    exp = two_scenes(tmp_path, 5_000, **settings)
    with pytest.raises(DeepSegError, match=message):
        dataprep.run(exp, registry)
    assert not list((tmp_path / "runs").rglob("*.h5*"))  # nothing half-written


def test_one_image_with_too_many_folds_says_how_many_it_allows(tmp_path, registry):
    image, labels, _ = squares_scene(tmp_path, size=56)  # 2 x 2 tiles in one overlap group
    exp = load_experiment(write_experiment(tmp_path, image, labels, folds=5))
    with pytest.raises(DeepSegError, match="folds: 5 leaves 4 fold\\(s\\) without tiles "
                                           "\\(fold\\(s\\) 0, 1, 2, ...; tiles per fold: 0, "
                                           "0, 0, 1, 0; 4 tiles, 3 of them buffer tiles\\): "
                                           "the data allows at most 1 fold$"):
        dataprep.run(exp, registry)


def test_a_scene_without_labels_is_an_error(tmp_path, registry):
    exp = two_scenes(tmp_path, 5_000)
    exp = exp.model_copy(update={"labels": None, "scenes": [
        exp.scenes[0].model_copy(update={"labels": None}), exp.scenes[1]]})
    with pytest.raises(DeepSegError, match="scenes\\[0\\].labels: scene 'north' has no labels "
                                           "and the experiment gives no shared 'labels'"):
        dataprep.run(exp, registry)


def test_crossval_runs_over_scenes(tmp_path, registry):
    exp = two_scenes(tmp_path, 2_000, folds=2, epochs=1)
    exp = exp.model_copy(update={"crossval": exp.crossval.model_copy(update={"folds": [1]})})
    dataprep.run(exp, registry)
    table = crossval.run(exp, registry)
    assert "overall_accuracy" in table


def test_scene_paths_resolve_against_the_yaml_and_missing_files_are_named(tmp_path):
    import yaml

    from deepseg_core.errors import ConfigError

    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.tif").write_bytes(b"")
    exp = {"nbands": 3, "classes": [{"name": "bg"}, {"name": "tree"}], "model": "unet64",
           "scenes": [{"images": "plots/a.tif", "labels": {"path": "plots/a.tif"}},
                      {"name": "b", "images": ["plots/b.tif"]}]}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp))
    loaded = load_experiment(path, check_files=False)
    assert loaded.scenes[0].images[0].path == str(tmp_path / "plots" / "a.tif")
    assert loaded.scenes[0].labels.path == str(tmp_path / "plots" / "a.tif")
    assert loaded.images == loaded.scenes[0].images  # what predict uses by default
    with pytest.raises(ConfigError, match="scenes\\[1\\].images\\[0\\].path: file not found: "
                                          f"{tmp_path}/plots/b.tif"):
        load_experiment(path)


def test_real_sentinel2_corner_tiles_as_scenes_tile_only_their_extent(shared_data, tmp_path,
                                                                      registry):
    rs = shared_data / "rsgislib"
    corners = [rs / "s2_over_tiles" / f"sen2_20210527_aber_tile{i}.tif" for i in (0, 15)]
    common = dict(nbands=10, tilesize=64, overlap=16, folds=2, images=None,
                  classes=[{"name": "background"}] + [{"name": f"c{v}", "value": v}
                                                      for v in range(1, 6)],
                  labels={"raster": str(rs / "sen2_20210527_aber_cls.tif"), "path": None,
                          "class_field": None, "outside": "ignore"})
    stores = {}
    for name, scenes in (("both", [{"images": str(p)} for p in corners]),
                         ("first", [{"images": str(corners[0])}]),
                         ("last", [{"images": str(corners[1])}]),
                         ("mosaic", None)):
        (tmp_path / name).mkdir()
        kw = {"scenes": scenes} if scenes else {"images": [{"path": [str(p) for p in corners]}]}
        path = write_experiment(tmp_path / name, corners[0], corners[0], name=name,
                                **{**common, **kw})
        store = Store(dataprep.run(load_experiment(path), registry))
        stores[name] = store
    both, first, last = stores["both"], stores["first"], stores["last"]
    # the two corners are 9 km apart: a mosaic grid of 930 x 947 px; the scenes tile 271 x 270
    # and 200 x 216 px only, exactly as each tile on its own
    assert (both.attrs["width"], both.attrs["height"]) == (930, 947)
    assert np.bincount(both.tiles["scene"]).tolist() == [len(first), len(last)]
    images = both.file["images"]
    np.testing.assert_array_equal(images[:len(first)], first.file["images"][:])
    np.testing.assert_array_equal(images[len(first):], last.file["images"][:])
    np.testing.assert_array_equal(both.tiles["geotransform"][len(first):],
                                  last.tiles["geotransform"])
    assert set(both.tiles["fold"][both.tiles["scene"] == 1]) >= {0, 1}  # both folds get each
    # every pixel of both tiles is labelled once: in the scenes and in the one-grid mosaic
    # (whose windows past a file's edge are not valid pixels, the files having no nodata)
    pixels = 271 * 270 + 200 * 216
    assert both.class_counts().sum() == pixels
    np.testing.assert_array_equal(stores["mosaic"].class_counts(), both.class_counts())
    assert len(stores["mosaic"]) > len(both)  # its windows straddle the scenes' edges
    for store in stores.values():
        store.close()


def test_instance_ids_stay_unique_over_scenes(tmp_path, registry):
    exp = two_scenes(tmp_path, 3_000, segmentation_type="instance",
                     model={"name": "maskrcnn"}, tilesize=64, overlap=16)
    with build(exp, registry) as store:
        ids = store.file["instances"][:]
        classes = store.instance_classes()
        scene = store.tiles["scene"]
        north = set(np.unique(ids[scene == 0])) - {0}
        south = set(np.unique(ids[scene == 1])) - {0}
    assert north and south and not north & south
    assert all(classes[i] == 1 for i in north | south)  # every id has its class (square)

"""experiment.yaml: valid files, relative paths, ``extends``, and one clear line per bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from deepseg_core.config import check_registry, load_experiment
from deepseg_core.errors import ConfigError
from deepseg_core.testing.encoder_files import write_lite0_pth
from tests.support.cli import invoke

MINIMAL = {
    "nbands": 3, "tilesize": 32, "overlap": 8,
    "images": "data/image.tif",
    "labels": {"path": "data/labels.gpkg", "class_field": "class"},
    "classes": [{"name": "background"}, {"name": "tree", "color": "#1a9641"}],
    "model": {"name": "unet64", "filters": 8, "depth": 2},
}


def write_scene(folder: Path, nbands: int = 3) -> None:
    """A 64 x 64 px GeoTIFF and a GeoPackage with two polygons of class 1 in ``folder``."""
    import geopandas as gpd
    import rasterio
    from affine import Affine
    from shapely.geometry import box

    folder.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).integers(0, 255, (nbands, 64, 64), dtype="uint8")
    with rasterio.open(folder / "image.tif", "w", driver="GTiff", width=64, height=64,
                       count=nbands, dtype="uint8", crs="EPSG:2193",
                       transform=Affine(0.5, 0, 1_750_000, 0, -0.5, 5_900_000)) as dst:
        dst.write(data)
    polygons = [box(1_750_002, 5_899_980, 1_750_010, 5_899_990), box(1_750_020, 5_899_972,
                                                                     1_750_030, 5_899_985)]
    gpd.GeoDataFrame({"class": [1, 1]}, geometry=polygons, crs="EPSG:2193").to_file(
        folder / "labels.gpkg", layer="trees", driver="GPKG")


def write_yaml(path: Path, content: dict | str) -> Path:
    """Write ``content`` (a mapping, or raw text) as a yaml file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A folder holding data/image.tif and data/labels.gpkg (experiments go next to data/)."""
    folder = tmp_path_factory.mktemp("project")
    write_scene(folder / "data")
    return folder


def test_minimal_experiment_loads(project, registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working directory
    path = write_yaml(project / "exp1.yaml", MINIMAL)
    exp = load_experiment(path)
    check_registry(exp, registry)
    assert exp.source == path and exp.name == "exp1" and exp.workdir == str(project)
    assert exp.images[0].path == str(project / "data" / "image.tif")
    assert exp.labels.path == str(project / "data" / "labels.gpkg")
    assert (exp.model.name, exp.model.params) == ("unet64", {"filters": 8, "depth": 2})
    assert exp.stages == ["dataprep", "train", "crossval", "predict"]
    assert exp.training.batch_size == 8 and exp.class_names == ["background", "tree"]
    assert exp.outdir == project / "exp1"


@pytest.mark.parametrize("model, name, params", [
    ("unet64", "unet64", {}),
    ({"name": "unet64", "filters": 8}, "unet64", {"filters": 8}),
    ({"name": "unet64", "params": {"filters": 8}}, "unet64", {"filters": 8}),
])
def test_model_string_and_dict_forms(project, registry, model, name, params):
    exp = load_experiment(write_yaml(project / "forms.yaml", {**MINIMAL, "model": model}))
    check_registry(exp, registry)
    assert (exp.model.name, exp.model.params) == (name, params)


def test_workdir_and_stages(project):
    exp = load_experiment(write_yaml(project / "wd.yaml", {
        **MINIMAL, "workdir": "runs", "stages": "dataprep, train", "name": "first"}))
    assert exp.workdir == str(project / "runs") and exp.outdir == project / "runs" / "first"
    assert exp.stages == ["dataprep", "train"]


def test_extends_resolves_each_files_paths_against_its_own_folder(project, tmp_path):
    base = write_yaml(tmp_path / "shared" / "base.yaml", {
        **MINIMAL, "name": "base", "images": str(project / "data" / "image.tif"),
        "labels": {"path": "../labels/trees.gpkg", "class_field": "class"},
        "model": "unet64", "training": {"batch_size": 4, "loss": "dice"}})
    write_scene(tmp_path / "labels")
    (tmp_path / "labels" / "labels.gpkg").rename(tmp_path / "labels" / "trees.gpkg")
    write_scene(tmp_path / "exp" / "data")
    child = write_yaml(tmp_path / "exp" / "child.yaml", {
        "extends": "../shared/base.yaml", "images": ["data/image.tif"],
        "model": {"filters": 8}, "training": {"batch_size": 2}})
    exp = load_experiment(child)
    assert base.is_file() and exp.name == "child"  # the name is never inherited
    assert exp.images[0].path == str(tmp_path / "exp" / "data" / "image.tif")
    assert exp.labels.path == str(tmp_path / "shared" / ".." / "labels" / "trees.gpkg")
    assert exp.labels.class_field == "class"
    assert (exp.training.batch_size, exp.training.loss) == (2, "dice")  # nested dicts merge
    assert (exp.model.name, exp.model.params) == ("unet64", {"filters": 8})
    assert exp.workdir == str(tmp_path / "exp")


def test_pretrained_weights_files_are_relative_to_the_experiment_file(project, tmp_path):
    # a job script runs from another folder: the file the experiment names must not move
    semantic = write_yaml(project / "exps" / "u.yaml", {
        **MINIMAL, "images": "../data/image.tif", "labels": {"path": "../data/labels.gpkg"},
        "model": {"name": "unet64", "encoder": "efficientnet_lite0",
                  "encoder_weights": "weights/lite0.pth"}})
    exp = load_experiment(semantic, check_files=False)
    assert exp.model.params["encoder_weights"] == str(project / "exps" / "weights" /
                                                      "lite0.pth")
    instance = write_yaml(project / "exps" / "m.yaml", {
        **MINIMAL, "images": "../data/image.tif", "labels": {"path": "../data/labels.gpkg"},
        "model": {"name": "maskrcnn", "backbone": "vgg16", "backbone_weights": "hed.h5"}})
    params = load_experiment(instance, check_files=False).model.params
    assert params["backbone_weights"] == str(project / "exps" / "hed.h5")
    keras_cache = write_yaml(project / "exps" / "r.yaml", {
        **MINIMAL, "images": "../data/image.tif", "labels": {"path": "../data/labels.gpkg"},
        "model": {"name": "unet64", "encoder": "resnet50", "encoder_weights": "imagenet"}})
    params = load_experiment(keras_cache, check_files=False).model.params
    assert params["encoder_weights"] == "imagenet"


def test_extends_chains_over_several_files(project):
    write_yaml(project / "chain" / "a.yaml", {**MINIMAL, "images": "../data/image.tif",
                                             "labels": {"path": "../data/labels.gpkg"}})
    write_yaml(project / "chain" / "b.yaml", {"extends": "a.yaml", "epochs": 3})
    exp = load_experiment(write_yaml(project / "c.yaml", {"extends": "chain/b.yaml",
                                                          "tilesize": 64}))
    assert (exp.epochs, exp.tilesize, exp.overlap) == (3, 64, 8)
    assert exp.images[0].path == str(project / "chain" / ".." / "data" / "image.tif")


def test_environment_variable_names_the_experiment(project, monkeypatch):
    path = write_yaml(project / "from_env.yaml", MINIMAL)
    monkeypatch.setenv("DEEPSEG_EXPERIMENT", str(path))
    assert load_experiment().source == path
    monkeypatch.delenv("DEEPSEG_EXPERIMENT")
    with pytest.raises(ConfigError, match="^no experiment given: name an experiment.yaml or "
                                          "set DEEPSEG_EXPERIMENT$"):
        load_experiment()


def test_missing_files_can_be_left_unchecked(project):
    exp = load_experiment(write_yaml(project / "later.yaml", {**MINIMAL, "images": "x/*.tif"}),
                          check_files=False)
    assert exp.images[0].path == str(project / "x" / "*.tif")


def test_the_init_template_validates_with_its_files(tmp_path, registry):
    assert invoke("init", str(tmp_path / "experiment.yaml")).exit_code == 0
    write_scene(tmp_path)  # image.tif and labels.gpkg: the files the template names ...
    write_lite0_pth(tmp_path / "efficientnet-lite0-57934424.pth")  # ... and its encoder's
    exp = load_experiment(tmp_path / "experiment.yaml")
    check_registry(exp, registry)
    assert exp.labels.path == str(tmp_path / "labels.gpkg") and exp.nbands == 3


# (case id, yaml content as a change to MINIMAL or raw text, key path, message).
BAD = [
    ("yaml-syntax", "nbands: 3\ntilesize: 32\n  overlap: 8\n", "line 3, column 10",
     "invalid YAML: mapping values are not allowed here"),
    ("duplicate-key", "nbands: 3\ntilesize: 32\nnbands: 4\n", "line 3, column 1",
     "invalid YAML: key 'nbands' is given twice"),
    ("unknown-key", {"tilesze": 64}, "tilesze", "unknown key; did you mean 'tilesize'?"),
    ("unknown-nested-key", {"training": {"batchsize": 4}}, "training.batchsize",
     "unknown key; did you mean 'batch_size'?"),
    ("unlike-any-key", {"training": {"zzz": 4}}, "training.zzz",
     "unknown key; expected one of: batch_size, loss, class_weights,"),
    ("wrong-type", {"tilesize": "big"}, "tilesize",
     "Input should be a valid integer, unable to parse string as an integer (got 'big')"),
    ("wrong-type-union", {"images": [{"path": 5}]}, "images[0].path",
     "Input should be a valid string or a valid list (got 5)"),
    ("missing-key", {"nbands": None}, "nbands", "required key is missing"),
    ("overlap", {"overlap": 32}, "overlap", "overlap (32) must be at most half the tilesize"),
    ("epochs-0", {"epochs": 0}, "epochs", "Input should be greater than or equal to 1 (got 0)"),
    ("unknown-stage", {"stages": "dataprep,trian"}, "stages[1]",
     "Input should be 'dataprep', 'train', 'crossval' or 'predict' (got 'trian')"),
    ("one-class", {"classes": [{"name": "background"}]}, "classes",
     "needs at least 2 classes (index 0 is background)"),
    ("class-twice", {"classes": [{"name": "a"}, {"name": "a"}]}, "classes",
     "class names must be unique; given twice: a"),
    ("bad-colour", {"classes": [{"name": "a"}, {"name": "b", "color": "green"}]},
     "classes[1].color", "colour 'green' is not '#rrggbb' or '#rrggbbaa'"),
    ("two-label-sources", {"labels": {"path": "data/labels.gpkg", "raster": "data/image.tif"}},
     "labels", "give exactly one of 'path' (vectors) or 'raster'"),
    ("model-without-name", {"model": {"filters": 8}}, "model.name", "required key is missing"),
    ("missing-image", {"images": ["data/image.tif", "data/missing.tif"]}, "images[1].path",
     "file not found: {folder}/data/missing.tif"),
    ("no-glob-match", {"images": "data/*.jp2"}, "images[0].path",
     "no files match {folder}/data/*.jp2"),
    ("missing-labels", {"labels": {"path": "data/nothere.gpkg"}}, "labels.path",
     "file not found: {folder}/data/nothere.gpkg"),
    ("unknown-model", {"model": "unet65"}, "model.name", "unknown model 'unet65'; available: "),
    ("unknown-model-param", {"model": {"name": "unet64", "filterz": 8}}, "model",
     "model parameter(s) filterz unknown; expected some of: depth, dropout, encoder, "
     "encoder_weights, filters, weights"),
    ("bad-model-param", {"model": {"name": "unet64", "depth": 0}}, "model",
     "model parameter depth must be a whole number >= 1, not 0"),
    ("unknown-writer", {"predict": {"format": "bmp"}}, "predict.format",
     "unknown writer 'bmp'; available: "),
    ("no-writer-for-suffix", {"predict": {"output": "out.png"}}, "predict.output",
     "out.png: no registered writer for suffix '.png'"),
    ("schedule-and-reduce-lr", {"training": {"lr_schedule": "cosine", "reduce_lr": 2}},
     "training", "reduce_lr cannot be combined with lr_schedule: cosine (the schedule sets "
     "the rate at every step); drop one of them"),
    ("unknown-augmenter", {"augmentation": ["flips", "twirl"]}, "augmentation[1].name",
     "unknown augmenter 'twirl'; available: "),
]


def bad_file(folder: Path, case_id: str, content) -> Path:
    if isinstance(content, dict):
        content = {k: v for k, v in {**MINIMAL, **content}.items() if v is not None}
    return write_yaml(folder / f"{case_id}.yaml", content)


def expected_line(path: Path, key: str, message: str) -> str:
    return f"{path}: {key}: {message.format(folder=path.parent)}"


@pytest.mark.parametrize("case_id, content, key, message", BAD, ids=[c[0] for c in BAD])
def test_each_bad_input_names_file_and_key(project, registry, case_id, content, key, message):
    path = bad_file(project, case_id, content)
    with pytest.raises(ConfigError) as err:
        check_registry(load_experiment(path), registry)
    [line] = err.value.problems
    assert line.startswith(expected_line(path, key, message))


@pytest.mark.parametrize("case_id, content, key, message", BAD, ids=[c[0] for c in BAD])
def test_cli_validate_reports_each_bad_input(project, monkeypatch, case_id, content, key,
                                             message):
    monkeypatch.setattr("deepseg_core.plugins.manager._cached", None)
    path = bad_file(project, case_id, content)
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: " + expected_line(path, key, message))
    assert "Traceback" not in result.output


def test_several_problems_give_one_line_each(project):
    path = bad_file(project, "several", {"tilesize": "big", "epochs": 0, "foo": 1})
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: tilesize: Input should be a valid integer, unable to parse string as "
        "an integer (got 'big')",
        f"error: {path}: epochs: Input should be greater than or equal to 1 (got 0)",
        f"error: {path}: foo: unknown key; expected one of: name, workdir, segmentation_type, "
        "stages, crs, resolution, tilesize, overlap, nbands, epochs, learning_rate, images, "
        "scenes, labels, classes, ignore_label, padding, tiler, folds, fold_by, store, model, "
        "training, augmentation, crossval, predict, hpc, backend"]


def test_circular_extends(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "sub" / "b.yaml"
    write_yaml(a, {"extends": "sub/b.yaml", "epochs": 2})
    write_yaml(b, {"extends": "../a.yaml"})
    with pytest.raises(ConfigError) as err:
        load_experiment(a)
    assert err.value.problems == [f"{b}: extends: circular chain {a} -> {b} -> {a}"]
    result = invoke("validate", str(a))
    assert result.exit_code == 2 and result.stderr == f"error: {err.value.problems[0]}\n"
    own = write_yaml(tmp_path / "self.yaml", {"extends": "self.yaml"})
    with pytest.raises(ConfigError, match="self.yaml: extends: circular chain"):
        load_experiment(own)


def test_extends_a_missing_file(tmp_path):
    path = write_yaml(tmp_path / "x.yaml", {"extends": "nothere.yaml"})
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert err.value.problems == [f"{path}: extends: file not found: {tmp_path}/nothere.yaml"]


def test_missing_and_odd_experiment_files(tmp_path):
    with pytest.raises(ConfigError, match="nothere.yaml: experiment file not found$"):
        load_experiment(tmp_path / "nothere.yaml")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping of keys at the top "
                                          "level, got list$"):
        load_experiment(write_yaml(tmp_path / "list.yaml", "- a\n- b\n"))

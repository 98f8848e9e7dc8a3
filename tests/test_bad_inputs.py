"""Bad inputs give one line naming the file/key/value and what was expected (issue 13, item 5).

Each runs the CLI in a subprocess and asserts the message; no traceback, non-zero exit. The
read-only model folder is in tests/stages/test_full_disk.py (model-readonly).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import rasterio

from tests.support.cli import assert_one_line_error, deepseg
from tests.support.damage import truncate
from tests.support.synthetic import squares_scene, write_experiment, write_raster

# under pytest-xdist, one worker runs this module: its fixtures are made once
pytestmark = pytest.mark.xdist_group("bad-inputs")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    image, gpkg, _ = squares_scene(folder, size=96)
    return folder, image, gpkg


def test_an_experiment_file_that_is_not_text(scene):
    _, image, _ = scene
    done = deepseg("run", image)
    assert_one_line_error(done, str(image), "not a text file", "YAML")


def test_an_unknown_crs(scene, tmp_path):
    _, image, gpkg = scene
    exp = write_experiment(tmp_path, image, gpkg, crs="EPSG:999999")
    done = deepseg("dataprep", exp)
    assert_one_line_error(done, str(exp), "crs: 'EPSG:999999' is not a CRS PROJ knows")
    assert "PROJ: internal" not in done.stderr  # GDAL's own complaint is not printed


def test_a_misspelled_augmenter_parameter_lists_the_valid_ones(scene, tmp_path):
    _, image, gpkg = scene
    exp = write_experiment(tmp_path, image, gpkg,
                           augmentation=[{"name": "jitter", "brightnes": 0.2}])
    done = deepseg("train", exp)
    assert_one_line_error(done, "augmentation[0]", "'brightnes' (did you mean 'brightness'?)",
                          "expected some of: brightness, contrast, noise, p")


def test_an_image_without_crs_under_labels_with_one(scene, tmp_path):
    _, image, gpkg = scene
    with rasterio.open(image) as src:
        data, transform = src.read(), src.transform
    bare = write_raster(tmp_path / "nocrs.tif", data, transform, crs=None)
    exp = write_experiment(tmp_path, bare, gpkg)
    done = deepseg("dataprep", exp)
    assert_one_line_error(done, "no CRS", str(gpkg), "EPSG:2193")
    assert not list((tmp_path / "runs").rglob("*.h5"))


@pytest.fixture(scope="module")
def trained(scene, tmp_path_factory):
    folder, image, gpkg = scene
    root = tmp_path_factory.mktemp("trained")
    exp = write_experiment(root, image, gpkg, epochs=1,
                           training={"batch_size": 4, "seed": 1, "steps_per_epoch": 2})
    done = deepseg("run", exp, "--stages", "dataprep,train")
    assert done.returncode == 0, done.stderr
    model = root / "runs" / "exp" / "model"
    assert (model / "best.keras").exists() and (model / "last.keras").exists()
    return exp, model


@pytest.fixture
def model_dir(trained):
    """The trained model folder; whatever a test damages is put back afterwards."""
    exp, model = trained
    backup = model.with_name("model.bak")
    shutil.copytree(model, backup)
    yield exp, model
    shutil.rmtree(model)
    backup.rename(model)


@pytest.mark.faults
def test_a_truncated_model_json(model_dir):
    exp, model = model_dir
    truncate(model / "model.json")
    done = deepseg("predict", exp)
    assert_one_line_error(done, str(model / "model.json"), "truncated or not JSON",
                          "rerun 'deepseg train'")


def test_an_incomplete_model_json(model_dir):
    exp, model = model_dir
    info = json.loads((model / "model.json").read_text())
    del info["stats"], info["tilesize"]
    (model / "model.json").write_text(json.dumps(info))
    done = deepseg("predict", exp)
    assert_one_line_error(done, str(model / "model.json"), "missing tilesize, stats")


@pytest.mark.faults
def test_a_truncated_best_keras_falls_back_to_last_keras_saying_so(model_dir):
    exp, model = model_dir
    truncate(model / "best.keras")
    done = deepseg("predict", exp)
    assert done.returncode == 0, done.stderr
    assert (f"warning: {model / 'best.keras'} is damaged (not a complete .keras archive"
            in done.stderr)
    assert "using last.keras instead" in done.stderr
    assert "prediction:" in done.stdout


@pytest.mark.faults
def test_truncated_best_and_last_keras_name_both(model_dir):
    exp, model = model_dir
    truncate(model / "best.keras")
    truncate(model / "last.keras", keep=0.9)
    done = deepseg("predict", exp)
    assert_one_line_error(done, str(model / "best.keras"), str(model / "last.keras"),
                          "is damaged", "rerun 'deepseg train'")


PLUGINS = {  # module name: source; each is an installed distribution's entry point
    "exits_at_import": "import sys\nsys.exit(3)\n",
    "raises_at_register": ("from deepseg_core import hookimpl\n"
                           "class Boom(BaseException):\n    pass\n"
                           "@hookimpl\ndef deepseg_register_models(registry):\n"
                           "    raise Boom('no models today')\n"),
    "exits_at_register": ("import sys\nfrom deepseg_core import hookimpl\n"
                          "@hookimpl\ndef deepseg_register_tilers(registry):\n"
                          "    sys.exit('bye')\n"),
    "prints_at_import": ("import os, sys\nprint('hello from a chatty plugin')\n"
                         "os.write(1, b'raw bytes on fd 1\\n')\n"),
}


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """PYTHONPATH with one real installed distribution whose entry points are the plugins."""
    site = tmp_path_factory.mktemp("site")
    for name, source in PLUGINS.items():
        (site / f"{name}.py").write_text(source)
    dist = site / "badplugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: badplugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[deepseg]\n" + "".join(f"{n} = {n}\n" for n in PLUGINS))
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}  # the plugins, then the code under test


def test_plugins_that_exit_or_raise_base_exceptions_are_reported_and_skipped(plugin_env):
    done = deepseg("plugins", "--json", env=plugin_env, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}  # stdout is pure JSON
    assert rows["exits_at_import"]["error"] == "load: SystemExit: 3"
    assert rows["raises_at_register"]["error"] == "register models: Boom: no models today"
    assert rows["exits_at_register"]["error"] == "register tilers: SystemExit: bye"
    assert rows["prints_at_import"]["error"] is None
    assert "unet64" in rows["unet64"]["registered"]["model"]  # the others still load
    assert "hello from a chatty plugin" in done.stderr and "raw bytes on fd 1" in done.stderr


def test_a_command_still_runs_beside_plugins_that_exit(plugin_env, scene, tmp_path):
    _, image, gpkg = scene
    exp = write_experiment(tmp_path, image, gpkg)
    done = deepseg("validate", exp, env=plugin_env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warning: plugin 'exits_at_import' failed (load: SystemExit: 3)" in done.stderr

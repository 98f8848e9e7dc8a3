"""The plugin manager: real third-party distributions, broken plugins, strict mode, lazy loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from deepseg_core import hookimpl
from deepseg_core.errors import PluginLoadError
from deepseg_core.plugins.manager import get_plugins, load_plugins
from tests.support import cli
from tests.support.models import TinyFCN

THIRD_PARTY = '''
"""A third-party DeepSeg plugin: a tiny semantic model and a pixel-accuracy metric."""

from deepseg_core import hookimpl
from deepseg_core.contracts.model import SemanticModel


class TinyNet(SemanticModel):
    """One 3x3 convolution, then a per-pixel softmax."""

    defaults = {"filters": 4}

    def network(self, nbands, nclasses, filters):
        import keras

        inputs = keras.Input((None, None, nbands))
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(inputs)
        outputs = keras.layers.Conv2D(nclasses, 1, activation="softmax")(x)
        return keras.Model(inputs, outputs, name="tinynet")


class PixelAccuracy:
    """Fraction of labelled pixels predicted right (deepseg_core.metrics.base.Metric)."""

    applies_to = "semantic"

    def __init__(self, class_names, ignore_label):
        self.ignore_label, self.right, self.total = ignore_label, 0, 0

    def update(self, truth, prediction, valid=None, **extra):
        keep = truth != self.ignore_label
        if valid is not None:
            keep &= valid
        self.right += int((truth[keep] == prediction[keep]).sum())
        self.total += int(keep.sum())

    def state(self):
        return {"right": self.right, "total": self.total}

    def merge(self, states):
        merged = PixelAccuracy(None, self.ignore_label)
        merged.right = sum(s["right"] for s in states)
        merged.total = sum(s["total"] for s in states)
        return merged

    def summary(self):
        return {"pixel_accuracy": self.right / self.total if self.total else float("nan")}

    def write_report(self, folder, stem):
        return []


@hookimpl
def deepseg_register_models(registry):
    registry.add_model("tinynet", TinyNet())


@hookimpl
def deepseg_register_metrics(registry):
    registry.add_metric("pixel_accuracy", PixelAccuracy)
'''

BROKEN = "import deepseg_no_such_module_anywhere  # the plugin's dependency is not installed\n"

MISSPELLED = '''
from deepseg_core import hookimpl


@hookimpl
def deepseg_register_model(registry):
    registry.add_model("never", object())
'''


def install(site: Path, package: str, source: str, version: str = "0.1") -> Path:
    """Write ``package`` and a real ``<package>-<version>.dist-info`` with a deepseg entry point."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[deepseg]\n{package} = {package}\n")
    files = [f"{package}/__init__.py", *(f"{info.name}/{n}" for n in
                                         ("METADATA", "entry_points.txt", "RECORD"))]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    return site


def deepseg(*args: str, site: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """``deepseg ARGS`` in a fresh process whose only extra PYTHONPATH is ``site`` (none of
    this process's DEEPSEG_ settings), with the ``env`` settings."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("DEEPSEG_") and k != "PYTHONPATH"}
    if site is not None:
        environ["PYTHONPATH"] = str(site)
    return cli.deepseg(*args, env={**environ, **env}, cwd=site.parent if site else None,
                       timeout=120)


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {row["name"]: row for row in rows}


@pytest.fixture(scope="module")
def good_site(tmp_path_factory):
    return install(tmp_path_factory.mktemp("good") / "site", "myplugin", THIRD_PARTY)


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    site = install(tmp_path_factory.mktemp("broken") / "site", "myplugin", THIRD_PARTY)
    return install(site, "brokenplugin", BROKEN, version="2.3")


def module(name: str, **hooks) -> types.ModuleType:
    """An in-memory plugin module whose attributes are hookimpl-marked functions."""
    mod = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(mod, hook, hookimpl(function))
    return mod


def test_installed_third_party_plugin_is_listed_with_its_distribution(good_site):
    result = deepseg("plugins", "--json", site=good_site)
    assert result.returncode == 0, result.stderr
    row = by_name(json.loads(result.stdout))["myplugin"]
    assert row["distribution"] == "myplugin" and row["version"] == "0.1"
    assert row["module"] == "myplugin" and not row["builtin"] and row["error"] is None
    assert row["registered"] == {"metric": ["pixel_accuracy"], "model": ["tinynet"]}


def test_uninstalled_plugin_is_gone(good_site):
    result = deepseg("plugins", "--json", site=None)
    assert result.returncode == 0, result.stderr
    rows = by_name(json.loads(result.stdout))
    assert "myplugin" not in rows
    assert "tinynet" not in [m for row in rows.values() for m in row["registered"].get("model", [])]


def test_broken_plugin_is_reported_and_the_others_still_work(broken_site):
    text = deepseg("plugins", site=broken_site)
    assert text.returncode == 0, text.stderr
    assert "brokenplugin (brokenplugin 2.3)\n  FAILED: load: ModuleNotFoundError" in text.stdout
    assert "myplugin (myplugin 0.1)\n  models: tinynet\n  metrics: pixel_accuracy" in text.stdout
    rows = by_name(json.loads(deepseg("plugins", "--json", site=broken_site).stdout))
    assert "No module named 'deepseg_no_such_module_anywhere'" in rows["brokenplugin"]["error"]
    assert rows["brokenplugin"]["registered"] == {}
    assert rows["deepseg:rasterio_io"]["error"] is None and rows["myplugin"]["error"] is None


def test_strict_mode_turns_a_broken_plugin_into_a_one_line_error(broken_site):
    result = deepseg("plugins", site=broken_site, DEEPSEG_STRICT_PLUGINS="1")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: plugin 'brokenplugin' (brokenplugin) failed to load: ModuleNotFoundError: "
        "No module named 'deepseg_no_such_module_anywhere'"]


def test_a_disabled_plugin_is_neither_loaded_nor_listed(broken_site):
    result = deepseg("plugins", "--json", site=broken_site,
                     DEEPSEG_DISABLE_PLUGINS="brokenplugin", DEEPSEG_STRICT_PLUGINS="1")
    assert result.returncode == 0, result.stderr
    rows = by_name(json.loads(result.stdout))
    assert "brokenplugin" not in rows and not any(row["error"] for row in rows.values())
    assert rows["myplugin"]["registered"]["model"] == ["tinynet"]


def test_misspelled_hook_fails_loudly_in_the_cli(tmp_path):
    site = install(tmp_path / "site", "typoplugin", MISSPELLED)
    result = deepseg("plugins", site=site)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: plugin 'typoplugin' (typoplugin) implements unknown hook "
                           "'deepseg_register_model' (misspelled? did you mean "
                           "'deepseg_register_models'?")
    assert line.endswith("set DEEPSEG_DISABLE_PLUGINS=typoplugin")
    assert deepseg("plugins", site=site, DEEPSEG_DISABLE_PLUGINS="typoplugin").returncode == 0


def test_misspelled_hook_raises_plugin_load_error():
    typo = module("typo_plugin", deepseg_register_writer=lambda registry: None)
    with pytest.raises(PluginLoadError, match=r"^plugin 'typo' \(typo_plugin\) implements "
                                              r"unknown hook 'deepseg_register_writer' "
                                              r"\(misspelled\? did you mean "
                                              r"'deepseg_register_writers'\?"):
        load_plugins(extra=[("typo", typo)])


def test_disabling_a_misspelled_plugin_by_name(monkeypatch):
    monkeypatch.setenv("DEEPSEG_DISABLE_PLUGINS", " other , typo ")
    typo = module("typo_plugin", deepseg_register_model=lambda registry: None)
    loaded = load_plugins(extra=[("typo", typo)])
    assert "typo" not in [p.name for p in loaded.plugins]


def boom_models(registry):
    registry.add_model("half", TinyFCN())
    raise RuntimeError("boom")


def test_a_failing_registration_hook_is_skipped_and_leaves_nothing():
    readers = module("halfway", deepseg_register_readers=lambda registry: None,
                     deepseg_register_models=boom_models)
    loaded = load_plugins(extra=[("halfway", readers)])
    [info] = [p for p in loaded.plugins if p.name == "halfway"]
    assert info.error == "register models: RuntimeError: boom"
    assert info.registered == {} and "half" not in loaded.registry.names("model")
    assert loaded.failures == [info]
    assert "grid" in loaded.registry.names("tiler")  # the others are untouched


def test_strict_mode_reraises_a_failing_registration_hook(monkeypatch):
    monkeypatch.setenv("DEEPSEG_STRICT_PLUGINS", "yes")
    with pytest.raises(PluginLoadError, match="^plugin 'halfway' .* failed to register "
                                              "models: RuntimeError: boom$"):
        load_plugins(extra=[("halfway", module("halfway", deepseg_register_models=boom_models))])


def test_a_hook_with_arguments_the_spec_lacks_is_a_load_failure():
    wrong = module("wrong", deepseg_register_models=lambda registry, settings: None)
    [info] = [p for p in load_plugins(extra=[("wrong", wrong)]).plugins if p.name == "wrong"]
    assert info.error.startswith("load: PluginValidationError:")
    assert "settings" in info.error


def test_a_plugin_name_taken_by_a_builtin_is_a_failure_not_a_takeover():
    other = module("other", deepseg_register_tilers=lambda registry: None)
    loaded = load_plugins(extra=[("deepseg:tiler", other)])
    builtin, clash = [p for p in loaded.plugins if p.name == "deepseg:tiler"]
    assert builtin.builtin and builtin.registered == {"tiler": ["grid"]}
    assert clash.error.startswith("load: ValueError:") and clash.registered == {}
    assert "the built-ins'" in clash.error
    # a third-party plugin named like a built-in module is just another plugin
    named = load_plugins(extra=[("tiler", other)])
    assert [p.error for p in named.plugins if p.name == "tiler"] == [None]


def test_builtins_and_installed_plugins_are_listed():
    loaded = load_plugins()
    rows = {p.name: p for p in loaded.plugins}
    for name in ("rasterio_io", "tiler", "augment", "metrics"):
        name = f"deepseg:{name}"
        assert rows[name].builtin and rows[name].distribution == "deepseg-core"
    assert rows["deepseg:rasterio_io"].registered["writer"] == ["cog", "gtiff"]
    assert rows["unet64"].distribution == "deepseg-unet64" and not rows["unet64"].builtin
    assert rows["unet64"].registered == {"model": ["unet64"]}
    assert loaded.failures == []


def test_get_plugins_loads_once_until_reloaded(monkeypatch):
    monkeypatch.setattr("deepseg_core.plugins.manager._cached", None)
    first = get_plugins()
    assert get_plugins() is first and get_plugins(reload=True) is not first


LAZY_CHECK = """
import json, sys
import deepseg_core, deepseg_core.cli
plugins = ("deepseg_unet64", "deepseg_resunet", "deepseg_maskrcnn", "deepseg_kea_io",
           "deepseg_core.builtin", "deepseg_core.plugins", "deepseg_core.contracts")
stages = ("deepseg_core.stages.", "deepseg_core.training", "deepseg_core.inference")
def loaded(prefixes):
    return sorted(m for m in sys.modules if m.startswith(prefixes))
at_import = loaded(plugins + stages + ("tensorflow", "keras"))
try:
    deepseg_core.cli.main(["--help"])
except SystemExit as exc:
    code = exc.code
at_help = loaded(stages + ("tensorflow", "keras"))
help_plugins = loaded(plugins)
deepseg_core.cli.main(["plugins"], standalone_mode=False)
tf = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps({"import": at_import, "help": at_help, "help_plugins": help_plugins,
                  "code": code, "plugins_tf": tf}))
"""


def test_importing_the_cli_loads_nothing_and_help_loads_no_stage_or_tensorflow():
    # PYTHONPATH as the environment has it: the code under test, not another installed copy
    result = subprocess.run([sys.executable, "-c", LAZY_CHECK], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["import"] == [] and report["code"] == 0
    # --help lists the plugins' commands, so it loads the plugins, but never a stage,
    # TensorFlow or Keras: plugins import those inside their factories only
    assert report["help"] == [] and "deepseg_core.plugins.manager" in report["help_plugins"]
    assert report["plugins_tf"] == []

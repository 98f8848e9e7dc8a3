"""The registry: duplicate names name both plugins, explicit override, helpful unknown names."""

from __future__ import annotations

import types

import pytest

from deepseg_core import hookimpl
from deepseg_core.errors import RegistryError
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.plugins.registry import Registry


class Model:
    """The smallest object that follows the model contract (nothing is ever built)."""

    segmentation_type = "semantic"

    def __init__(self, label: str):
        self.label = label

    def __eq__(self, other):
        return isinstance(other, Model) and other.label == self.label

    validate = build = compile = prepare_batch = predict_tiles = custom_objects = \
        lambda self, *args, **kwargs: None


def model_plugin(name: str, model_name: str, model, override: bool = False,
                 **order) -> types.ModuleType:
    """An in-memory plugin module registering one model (``order``: tryfirst/trylast)."""
    mod = types.ModuleType(name)

    @hookimpl(**order)
    def deepseg_register_models(registry):
        registry.add_model(model_name, model if not isinstance(model, str) else Model(model),
                           override=override)

    mod.deepseg_register_models = deepseg_register_models
    return mod


class Writer:
    def __init__(self, *extensions):
        self.extensions = extensions

    def create(self, path, info, **options):
        raise AssertionError("these tests never write through it")


def test_a_name_registered_twice_names_both_plugins():
    first, second = model_plugin("first_mod", "tiny", "A"), model_plugin("second_mod", "tiny", "B")
    with pytest.raises(RegistryError) as err:
        load_plugins(extra=[("first", first), ("second", second)])
    # pluggy calls the later-registered plugin first: 'second' holds the name when 'first' asks
    assert str(err.value) == ("model 'tiny' is registered twice: by plugin 'second' and by plugin "
                              "'first' (pass override=True to replace it on purpose)")


def test_override_replaces_on_purpose():
    first = model_plugin("first_mod", "tiny", "A")
    second = model_plugin("second_mod", "tiny", "B", override=True, trylast=True)
    loaded = load_plugins(extra=[("first", first), ("second", second)])
    assert loaded.registry.get("model", "tiny") == Model("B")
    registered = {p.name: p.registered for p in loaded.plugins}
    assert registered["first"] == {} and registered["second"] == {"model": ["tiny"]}


def test_a_clash_with_a_builtin_names_the_builtin_plugin():
    mod = types.ModuleType("my_gtiff")
    mod.deepseg_register_writers = hookimpl(lambda registry: registry.add_writer("gtiff", Writer()))
    with pytest.raises(RegistryError, match="^writer 'gtiff' is registered twice: by plugin "
                                            "'deepseg:rasterio_io' and by plugin 'mine'"):
        load_plugins(extra=[("mine", mod)])


def test_unknown_name_lists_the_available_ones():
    registry = load_plugins().registry
    with pytest.raises(RegistryError) as err:
        registry.get("model", "unet65")
    assert str(err.value).startswith("unknown model 'unet65'; available: ")
    assert "unet64" in str(err.value).split("available: ")[1].split(", ")
    with pytest.raises(RegistryError, match="^unknown tiler 'hex'; available: grid$"):
        registry.get("tiler", "hex")
    with pytest.raises(RegistryError, match="^unknown metric 'x'; available: none$"):
        Registry().get("metric", "x")


def test_names_entries_and_providers():
    registry = Registry()
    registry.provider = "p1"
    zoom, blur, iou = (lambda **params: None for _ in range(3))
    registry.add_augmenter("zoom", zoom)
    registry.add_augmenter("blur", blur)
    registry.provider = "p2"
    registry.add_metric("iou", iou)
    assert registry.names("augmenter") == ["blur", "zoom"]
    assert [(e.name, e.obj, e.provider) for e in registry.entries("augmenter")] == [
        ("blur", blur, "p1"), ("zoom", zoom, "p1")]
    assert registry.provided_by("p1") == {"augmenter": ["blur", "zoom"]}
    assert registry.provided_by("p2") == {"metric": ["iou"]}
    registry.remove_provider("p1")
    assert registry.names("augmenter") == [] and registry.provided_by("p1") == {}


def test_writer_for_by_format_and_by_suffix():
    registry = Registry()
    tif, kea = Writer(".tif", ".tiff"), Writer(".kea")
    registry.add_writer("gtiff", tif)
    registry.add_writer("kea", kea)
    assert registry.writer_for("out/x.TIF") is tif
    assert registry.writer_for("out/x.tif", format="kea") is kea
    with pytest.raises(RegistryError, match=r"^out/x.png: no registered writer for suffix "
                                            r"'.png' \(writers: gtiff, kea\); name one with"):
        registry.writer_for("out/x.png")
    with pytest.raises(RegistryError, match="^unknown writer 'bmp'; available: gtiff, kea$"):
        registry.writer_for("out/x.tif", format="bmp")


def test_reader_for_a_missing_file_says_so(tmp_path):
    with pytest.raises(RegistryError, match="nothere.tif: file not found$"):
        load_plugins().registry.reader_for(tmp_path / "nothere.tif")


def test_reader_for_an_unreadable_file_gives_the_readers_reason(tmp_path):
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"not a raster\n" * 20)
    with pytest.raises(RegistryError) as err:
        load_plugins().registry.reader_for(garbage)
    message = str(err.value)
    assert message.startswith(f"{garbage}: no registered reader can open this file (readers: ")
    assert f"; {garbage}: not a readable raster: " in message and "\n" not in message


def test_hooks_run_in_pluggys_order_with_tryfirst_and_trylast():
    order = []

    def plugin(name, **options):
        mod = types.ModuleType(name)
        mod.deepseg_register_models = hookimpl(**options)(lambda registry: order.append(name))
        return mod

    load_plugins(extra=[("a", plugin("a", trylast=True)), ("b", plugin("b")),
                        ("c", plugin("c")), ("d", plugin("d", tryfirst=True))])
    assert order == ["d", "c", "b", "a"]  # pluggy: tryfirst, then last registered first


def test_a_hook_wrapper_sees_every_registration():
    seen = []
    mod = types.ModuleType("watcher")

    @hookimpl(wrapper=True)
    def deepseg_register_models(registry):
        result = yield
        seen.extend(registry.names("model"))
        return result

    mod.deepseg_register_models = deepseg_register_models
    load_plugins(extra=[("watcher", mod)])
    assert "unet64" in seen


def test_an_object_off_the_contract_is_refused_and_its_plugin_reported():
    class NoPredict:
        segmentation_type = "semantic"

        def validate(self, *a): ...

    loaded = load_plugins(extra=[("bad", model_plugin("bad_mod", "half", NoPredict()))])
    [bad] = [p for p in loaded.plugins if p.name == "bad"]
    assert bad.error.startswith("register models: TypeError: model 'half' of plugin 'bad' does "
                                "not follow the model contract")
    assert "lacks build, compile, prepare_batch, predict_tiles, custom_objects" in bad.error
    assert "half" not in loaded.registry.names("model") and not loaded.failures[1:]


def test_a_plugin_for_a_newer_api_is_reported_not_run():
    mod = model_plugin("future_mod", "future", "F")
    mod.DEEPSEG_PLUGIN_API = 99
    loaded = load_plugins(extra=[("future", mod)])
    [future] = [p for p in loaded.plugins if p.name == "future"]
    assert future.error == ("load: RuntimeError: it needs plugin API 99; this deepseg-core "
                            "provides 2: upgrade deepseg-core")
    assert "future" not in loaded.registry.names("model")

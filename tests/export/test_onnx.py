"""`deepseg export`: the trained model as an ONNX file that onnxruntime runs like `deepseg
predict` (classes equal, probabilities within TOLERANCE), with the metadata QGIS's Deepness
plugin reads; `deepseg predict` running that file without TensorFlow; a SavedModel; and
every refusal in one line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from deepseg_core.config import load_experiment
from deepseg_core.errors import DeepSegError
from deepseg_core.export.onnx import check_packages, export_model
from deepseg_core.geo.tiling import tile_cores
from deepseg_core.models.exported import exported_model
from deepseg_core.models.folder import trained_model
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import load, predict
from tests.support.cli import deepseg, environment
from tests.support.models import save_untrained
from tests.support.synthetic import predict_experiment, write_raster

TOLERANCE = 1e-5  # probabilities: the ONNX file against `deepseg predict` (float32)
MODEL = {"name": "unet64", "filters": 4, "depth": 2}  # installed: the CLI finds it

onnx = pytest.importorskip("onnx", reason="pip install 'deepseg-core[export]'")
onnxruntime = pytest.importorskip("onnxruntime", reason="pip install 'deepseg-core[export]'")
pytestmark = pytest.mark.xdist_group("export-onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, registry):
    """A scene, a model of it, its `deepseg predict` outputs and its `deepseg export` file."""
    folder = tmp_path_factory.mktemp("export")
    data = np.random.default_rng(5).integers(0, 255, (3, 90, 76)).astype("uint8")
    image = write_raster(folder / "img.tif", data)
    exp = predict_experiment(folder, image, model=MODEL, tilesize=32, overlap=8,
                             predict={"probabilities": "float32"})
    save_untrained(exp, registry, image, seed=3)
    run = deepseg("export", exp.source, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = predict.run(exp, registry)
    return exp, data, out, exp.outdir / "export" / "exp.onnx", run.stdout


def onnx_experiment(exp, folder: Path, path, **over) -> Path:
    """``exp``'s experiment file with ``model: {name: onnx, path: path}`` (and ``over``)."""
    data = yaml.safe_load(Path(exp.source).read_text())
    data.update(model={"name": "onnx", "path": str(path)}, workdir=str(folder / "runs"), **over)
    source = folder / "onnx.yaml"
    source.write_text(yaml.safe_dump(data))
    return source


def read(path):
    with rasterio.open(path) as src:
        return src.read()


def test_onnx_file_in_onnxruntime_equals_deepseg_predict(exported, registry):
    """Deepness's way: uint8 / 255, standardized by the metadata, channels first, tile by tile;
    the tile cores mosaicked as predict keeps them."""
    exp, data, out, onnx_path, said = exported
    assert "wrote" in said and str(onnx_path) in said
    session = onnxruntime.InferenceSession(str(onnx_path))
    meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    mean = np.asarray(meta["standardization_mean"], np.float32)[:, None, None]
    std = np.asarray(meta["standardization_std"], np.float32)[:, None, None]
    rows, cols = data.shape[1:]
    windows = registry.get("tiler", "grid")(cols, rows, exp.tilesize, exp.overlap)
    probs = np.zeros((len(exp.classes), rows, cols), np.float32)
    for window, core in zip(windows, tile_cores(windows, cols, rows)):
        tile = data[:, window.row_off:window.row_off + 32, window.col_off:window.col_off + 32]
        x = ((tile.astype(np.float32) / 255 - mean) / std)[None]
        (y,) = session.run(None, {"image": x})
        r, c = core.row_off - window.row_off, core.col_off - window.col_off
        probs[:, core.row_off:core.row_off + core.height, core.col_off:core.col_off + core.width] \
            = y[0][:, r:r + core.height, c:c + core.width]
    expected = read(out.with_name("prediction_probabilities.tif"))
    difference = float(np.abs(probs - expected).max())
    print(f"max |onnxruntime - deepseg predict| probability difference: {difference:.3g}")
    assert difference <= TOLERANCE
    classes = read(out)[0]
    assert np.array_equal(np.argmax(probs, axis=0), classes)
    assert len(np.unique(classes)) == len(exp.classes)  # every class is compared


def test_metadata_is_what_deepness_reads(exported):
    exp, _, _, onnx_path, _ = exported
    session = onnxruntime.InferenceSession(str(onnx_path))
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert inp.shape[1:] == [3, 32, 32] and inp.type == "tensor(float)"  # [B, C, H, W]
    assert outp.shape[1:] == [3, 32, 32] and outp.name == "probabilities"
    meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    assert meta["model_type"] == "Segmentor"
    assert meta["class_names"] == {"0": "background", "1": "a", "2": "b"}
    assert meta["resolution"] == 50.0  # cm per pixel: 0.5 m in NZTM
    assert meta["tiles_size"] == meta["tile_size"] == 32 and meta["tiles_overlap"] == 25
    stats = json.loads((exp.outdir / "model" / "model.json").read_text())["stats"]
    assert np.allclose(np.asarray(meta["standardization_mean"]) * 255, stats["mean"])
    assert np.allclose(np.asarray(meta["standardization_std"]) * 255, stats["std"])
    assert meta["deepseg"]["layout"] == "NCHW" and meta["deepseg"]["model"]["model"] == "unet64"


def test_predict_runs_the_onnx_file_without_tensorflow(exported, tmp_path):
    exp, data, out, onnx_path, _ = exported
    exp_onnx = load_experiment(onnx_experiment(exp, tmp_path, onnx_path))
    blocked = ("import sys\nfor m in ('tensorflow', 'keras', 'jax'): sys.modules[m] = None\n"
               "from deepseg_core.cli import main\nsys.argv = ['deepseg', 'predict', "
               f"{str(exp_onnx.source)!r}]\nmain()")
    run = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True,
                         env=environment(), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = exp_onnx.outdir / "predictions" / "prediction.tif"
    assert np.array_equal(read(got), read(out))
    probabilities = [read(p.with_name("prediction_probabilities.tif")) for p in (got, out)]
    assert np.abs(probabilities[0] - probabilities[1]).max() <= TOLERANCE
    assert got.with_suffix(".qml").is_file()  # styled like any prediction


def test_savedmodel_serves_the_same_probabilities(exported, registry, tmp_path):
    import tensorflow as tf

    exp, _, _, onnx_path, _ = exported
    trained = trained_model(exp.outdir, exp.nbands, exp.class_names)
    done = export_model(trained, registry, tmp_path / "m.onnx", ["savedmodel"])
    folder = done["savedmodel"]
    assert folder == tmp_path / "m_savedmodel" and not (tmp_path / "m.onnx").exists()
    meta = json.loads((folder / "deepseg_metadata.json").read_text())
    assert meta["model_type"] == "Segmentor" and meta["tiles_size"] == 32
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype("float32")
    loaded = tf.saved_model.load(str(folder))  # kept: its functions need its variables
    served = loaded.serve(x).numpy()
    session = onnxruntime.InferenceSession(str(onnx_path))
    assert np.abs(served - session.run(None, {"image": x})[0]).max() <= TOLERANCE


def test_instance_models_are_not_exported_with_the_reason(tmp_path, registry):
    data = np.random.default_rng(0).integers(0, 255, (3, 40, 40)).astype("uint8")
    image = write_raster(tmp_path / "img.tif", data)
    exp = predict_experiment(tmp_path, image, model="tinyblobs", segmentation_type="instance",
                             classes=[{"name": "background"}, {"name": "blob"}])
    save_untrained(exp, registry, image)
    trained = trained_model(exp.outdir, exp.nbands, exp.class_names)
    with pytest.raises(DeepSegError, match=r"^instance models cannot be exported: their "
                                           r"instances .* predict them with 'deepseg predict'$"):
        export_model(trained, registry, tmp_path / "m.onnx", ["onnx"])
    assert not (tmp_path / "m.onnx").exists()


def test_missing_converter_is_one_line(monkeypatch):
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else found(name, *a))
    with pytest.raises(DeepSegError, match=r"^deepseg export --format onnx needs tf2onnx "
                                           r"\(Keras backend tensorflow\): pip install "
                                           r"'deepseg-core\[export\]'$"):
        check_packages("tensorflow", ["onnx"])
    check_packages("tensorflow", ["savedmodel"])  # needs no converter


def test_export_before_training_is_one_line(tmp_path):
    image = write_raster(tmp_path / "img.tif", np.zeros((3, 40, 40), "uint8"))
    exp = predict_experiment(tmp_path, image, model=MODEL, tilesize=32, overlap=8)
    run = deepseg("export", exp.source, timeout=300)
    assert run.returncode != 0 and len(run.stderr.strip().splitlines()) == 1
    assert "no trained model in" in run.stderr and "run 'deepseg train' first" in run.stderr


def test_bad_onnx_models_are_one_line(exported, tmp_path):
    exp, _, _, onnx_path, _ = exported

    def problem(path, **over):
        with pytest.raises(DeepSegError) as err:
            load(onnx_experiment(exp, tmp_path, path, **over))
        assert "\n" not in str(err.value)
        return str(err.value)

    assert problem(onnx_path, classes=[{"name": "x"}, {"name": "y"}]).endswith(
        "exported for nbands=3, 3 classes and tilesize=32; the experiment has nbands=3, 2 "
        "classes and tilesize=32")
    assert "tilesize=64" in problem(onnx_path, tilesize=64)
    assert problem(tmp_path / "none.onnx").endswith("none.onnx: ONNX model file not found")
    (tmp_path / "text.onnx").write_text("not a model")
    assert "text.onnx: not an ONNX model onnxruntime can load" in problem(tmp_path / "text.onnx")
    bare = onnx.load(str(onnx_path))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    assert problem(tmp_path / "bare.onnx").endswith(
        "bare.onnx: an ONNX file without DeepSeg's metadata (key 'deepseg'); export the model "
        "with 'deepseg export'")
    with pytest.raises(DeepSegError, match="model 'onnx' runs an exported model and cannot be "
                                           "trained"):
        load_plugins().registry.get("model", "onnx").build(3, 3, 32, {"path": str(onnx_path)})
    with pytest.raises(DeepSegError, match=r"exported with nbands=3, tilesize=32"):
        exported_model(onnx_path, 4, exp.class_names, 32)
    relative = load_experiment(onnx_experiment(exp, tmp_path, "rel.onnx"), check_files=False)
    assert relative.model.params["path"] == str(tmp_path / "rel.onnx")  # beside the yaml

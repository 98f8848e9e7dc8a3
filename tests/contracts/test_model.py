"""The model contract's optional ``load``: a plugin whose models are no Keras models loads its
own saved file, and predicting with it never imports Keras or TensorFlow (the fault tests'
children rely on that: tests/support/models.py)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from deepseg_core.models.folder import load_saved
from deepseg_core.stages import predict
from tests.support.cli import environment
from tests.support.models import NumpyNet, save_untrained
from tests.support.synthetic import predict_experiment, squares_scene

PREDICT = """
import json, sys
from deepseg_core.cli import main
for args in sys.argv[1:]:
    try:
        main(json.loads(args), standalone_mode=False)
    except SystemExit as exc:
        assert not exc.code, exc
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow"))))
"""


def test_a_plugin_with_its_own_load_loads_its_file(tmp_path, registry):
    plugin = registry.get("model", "numpyfcn")
    net = plugin.build(3, 2, 32, {"seed": 4})
    net.save(tmp_path / "best.keras")
    loaded = load_saved(plugin, tmp_path / "best.keras")
    assert isinstance(loaded, NumpyNet) and loaded.arrays.keys() == net.arrays.keys()
    assert all(np.array_equal(loaded.arrays[k], net.arrays[k]) for k in net.arrays)


@pytest.mark.parametrize("model, settings", [
    ("numpyfcn", {"probabilities": "float32", "blend": True}),
    ("numpyblobs", {"output": "predictions/blobs.tif"}),
])
def test_predicting_with_it_imports_no_keras(tmp_path, registry, model, settings):
    img, _, _ = squares_scene(tmp_path, size=96)
    extra = {} if model == "numpyfcn" else dict(
        segmentation_type="instance", tilesize=64, overlap=32,
        classes=[{"name": "background"}, {"name": "blob"}])
    exp = predict_experiment(tmp_path, img, model=model, predict=settings, **extra)
    save_untrained(exp, registry, img)
    runs = [["predict", str(exp.source), "--shard", f"{i}/2"] for i in range(2)]
    done = subprocess.run([sys.executable, "-c", PREDICT, *map(json.dumps, runs),
                           json.dumps(["merge", str(exp.source)])],
                          env=environment(test_models=True), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []
    assert predict.output_path(exp).exists()

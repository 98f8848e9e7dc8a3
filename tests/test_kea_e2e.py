"""End to end with KEA: real libkea rasters in dataprep, a KEA prediction out."""

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.stages import dataprep, predict, train
from tests.support.synthetic import write_experiment


def test_kea_input_through_training_to_a_kea_prediction(shared_data, tmp_path):
    registry = load_plugins().registry
    if "kea" not in registry.names("reader"):
        pytest.skip("the deepseg-kea-io plugin is not installed")
    rs = shared_data / "rsgislib"
    classes = [{"name": "unlabelled"}] + [{"name": n} for n in
                                          ("Forest", "Grass", "Urban", "Water")]
    path = write_experiment(
        tmp_path, rs / "sen2_20210527_aber_subset_kea.kea", None, nbands=10, tilesize=64,
        overlap=16, epochs=1, folds=2, classes=classes,
        labels={"path": None, "class_field": None,
                "raster": str(rs / "sen2_20210527_aber_cls.kea"), "outside": "ignore"},
        predict={"output": "predictions/landcover.kea"})
    exp = load_experiment(path)
    store = dataprep.run(exp, registry)
    assert store.exists()
    train.run(exp, registry)
    out = predict.run(exp, registry)
    assert out.suffix == ".kea"
    reader = registry.reader_for(out)
    with reader.open(out) as src, registry.reader_for(
            rs / "sen2_20210527_aber_subset_kea.kea").open(
            rs / "sen2_20210527_aber_subset_kea.kea") as image:
        info = src.info
        assert (info.width, info.height) == (image.info.width, image.info.height)
        assert info.transform == image.info.transform
        assert info.thematic and info.class_names[:5] == tuple(c["name"] for c in classes)
        assert info.colormap is not None and info.nodata == 255
        classes_seen = np.unique(src.read())
    assert set(classes_seen.tolist()) <= {0, 1, 2, 3, 4, 255}

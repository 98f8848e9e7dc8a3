"""The docs are tested against the code: the schema reference, the README's plugin example and
the job scripts of docs/cluster.md's multi-node example."""

import re
import types

import numpy as np

from deepseg_core.config.docs import render, rows
from deepseg_core.config.schema import Experiment
from deepseg_core.plugins.manager import load_plugins
from tests.support import ROOT, cluster_docs


def test_experiment_reference_is_current_and_documents_every_key():
    committed = (ROOT / "docs" / "experiment.md").read_text()
    hint = "regenerate: python -m deepseg_core.config.docs > docs/experiment.md"
    assert committed == render(), hint
    table = rows(Experiment)
    assert len(table) > 60
    for key, _, _, meaning in table:
        assert meaning, f"schema key {key} has no description"
        assert f"| `{key}` |" in committed


def test_readme_plugin_example_registers_a_working_model_and_metric():
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n# tinynet/plugin.py\n(.*?)```", readme, re.S).group(1)
    module = types.ModuleType("tinynet_plugin")
    exec(compile(code, "README tinynet/plugin.py", "exec"), module.__dict__)
    registry = load_plugins(extra=[("tinynet", module)]).registry
    model = registry.get("model", "tinynet")
    net = model.build(4, 3, 32, {"filters": 2})
    assert net.predict(np.zeros((1, 32, 32, 4), "float32"), verbose=0).shape == (1, 32, 32, 3)
    metric = registry.get("metric", "pixelcount")(["a", "b", "c"], 255)
    metric.update(np.array([[0, 1], [2, 255]]), np.zeros((2, 2), int))
    merged = type(metric).merge([metric.state(), metric.state()])
    assert merged.summary() == {"pixels[a]": 2.0, "pixels[b]": 2.0, "pixels[c]": 2.0}


def test_cluster_docs_show_the_scripts_deepseg_sbatch_writes():
    hint = "regenerate: python -m tests.support.cluster_docs"
    assert cluster_docs.documented() == cluster_docs.render(), hint

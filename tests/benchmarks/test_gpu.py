"""benchmarks/gpu.py's small version (what a machine without a GPU runs): every step runs and
the JSON and markdown reports hold every figure."""

import json
import math
import subprocess
import sys

import pytest

from tests.support import ROOT

BENCH = ROOT / "benchmarks" / "gpu.py"


@pytest.mark.skipif(not BENCH.exists(), reason="benchmarks/ not in this checkout")
def test_the_gpu_benchmark_runs_small_and_reports_every_figure(tmp_path):
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(BENCH), "--small", "--out", str(out), "--workdir",
                    str(tmp_path / "work")], check=True, capture_output=True, text=True)
    r = json.loads((out / "results.json").read_text())
    assert r["mode"] == "small" and r["tensorflow"]
    combos = {(b["model"], b["precision"], b["batch"]) for b in r["bare_predict"]}
    assert combos == {(m, p, b) for m in ("unet64", "resunet")
                      for p in ("float32", "mixed_float16") for b in (2, 4)}
    assert all(b["tiles_per_s"] > 0 for b in r["bare_predict"])
    e2e = {(e["model"], e["precision"], e["readers"]): e for e in r["end_to_end"]}
    assert set(e2e) == {(m, p, 2) for m in ("unet64", "resunet")
                        for p in ("float32", "mixed_float16")} | {("unet64", "float32", 1)}
    # 256 px raster, 64 px tiles, 16 px overlap: a 5 x 5 grid, every tile predicted
    assert all(e["tiles"] == 25 and e["pipeline_cost"] > 0 and e["model_waited_s"] >= 0
               for e in e2e.values())
    # Mask R-CNN in float32 and bfloat16 (issue 26), stitching included, and its tree job
    assert [m["precision"] for m in r["maskrcnn"]] == ["float32", "mixed_bfloat16"]
    assert all(m["tiles"] == 9 and m["tiles_per_s"] > 0 for m in r["maskrcnn"])
    jobs = {(t["model"], t["precision"]): t for t in r["tree_job"]}
    for m in r["maskrcnn"]:
        assert math.isclose(jobs[("maskrcnn", m["precision"])]["hours_1_gpu"],
                            59_210 / m["tiles_per_s"] / 3600)
    assert [t["precision"] for t in r["train"]] == ["float32", "mixed_float16"]
    assert all(t["tiles"] > 0 and t["tiles_per_s"] > 0 for t in r["train"])
    job = r["tree_job"][0]
    rate = e2e[(job["model"], job["precision"], 2)]["tiles_per_s"]
    assert math.isclose(job["hours_1_gpu"], 59_210 / rate / 3600)
    assert math.isclose(job["gpx_per_h_per_gpu"], 146_400 * 237_600 / 1e9 / job["hours_1_gpu"])
    table = (out / "results.md").read_text()
    for heading in ("Bare predict", "End to end", "Mask R-CNN", "training epoch",
                    "59,210-tile", "DeepForest"):
        assert heading in table

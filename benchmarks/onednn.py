"""oneDNN per TensorFlow release: does the suite abort with oneDNN on, and what speed it gives.

    python benchmarks/onednn.py --python VENV/bin/python [--python ...] [--runs 1]
        [--tests tests/stages/test_train.py ...] [--workers 2] [--root REPO] [--out onednn.json]

Each ``--python`` is an interpreter of a venv with DeepSeg, its plugins, pytest-xdist and one
TensorFlow release installed (``pip install -e ".[cpu,test]" "tensorflow-cpu==2.19.1"
-e plugins/...``);
``--root`` is the checkout whose tests run (default: this one; a venv's editable install must
point at a checkout of the same commit). For each one it

1. runs the given tests ``--runs`` times with ``TF_ENABLE_ONEDNN_OPTS=1`` (pytest-xdist,
   ``--workers`` processes; the tests' own subprocesses inherit the setting) and counts the
   runs in which a process aborted: a worker that crashed, glibc's ``double free or
   corruption`` / ``corrupted`` / ``free(): invalid`` messages, or a ``Fatal Python error``;
2. times the same UNet64 training steps (32 filters, depth 3, batches of 8 tiles of 128 px,
   random data) with oneDNN off and on, each in a fresh process: CPU seconds per tile (and
   tiles/s) of the second epoch.

It prints one markdown row per release and writes every figure to ``--out``. The suite's
default (oneDNN off) stays unless the abort counts say a release is safe: 3 of 7 whole-suite
runs aborted on TensorFlow 2.21 before that default.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ABORT = re.compile(r"crashed while running|double free or corruption|corrupted (size|double)"
                   r"|free\(\): invalid|malloc\(\): |Fatal Python error|node down")
CRASHED = re.compile(r"worker '?\w+'? crashed while running '?([^'\n]+)'?")
DEFAULT_TESTS = ["tests/stages/test_train.py", "plugins/deepseg_unet64/tests",
                 "plugins/deepseg_resunet/tests", "tests/training/test_distributed.py"]

SPEED = """
import os, sys, time, json
import deepseg_core  # noqa: F401  (its TF_ENABLE_ONEDNN_OPTS default yields to the caller's)
import keras, numpy as np, tensorflow as tf
sys.path.insert(0, {plugin!r})
from deepseg_unet64.model import build_unet64
keras.utils.set_random_seed(0)
model = build_unet64(4, 3, filters=32, depth=3)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.random((128, 128, 128, 4), dtype=np.float32)
y = (x[..., 0] > 0.5).astype("int32") + (x[..., 1] > 0.7)
model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # traces; the timed epoch is the second
start, cpu = time.perf_counter(), time.process_time()
model.fit(x, y, batch_size=8, epochs=1, verbose=0)
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({{"tf": tf.__version__, "tiles_per_s": len(x) / wall,
                   "cpu_s_per_tile": cpu / len(x)}}))
"""


def run_tests(python: str, tests: list[str], workers: int, root: Path) -> dict:
    """One pytest run with oneDNN on: exit code, seconds, abort evidence."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.monotonic()
    proc = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", str(workers), *tests], cwd=root, env=env,
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    # pytest's last stdout line (stderr may end with warnings, e.g. of pytest's cleanup of
    # /tmp/pytest-of-USER, which other sessions on the machine share)
    summary = (proc.stdout.strip().splitlines() or [""])[-1]
    aborted = bool(ABORT.search(out)) or proc.returncode < 0
    if not aborted and proc.returncode not in (0, 1):  # pytest could not run them (4: usage)
        raise SystemExit(f"{python}: pytest exited {proc.returncode} without running the "
                         f"tests: {out.strip()[:300]}")
    return {"rc": proc.returncode, "seconds": round(time.monotonic() - start, 1),
            "aborted": aborted,
            "evidence": sorted({m[0] for m in ABORT.finditer(out)}),
            "crashed_tests": CRASHED.findall(out), "summary": summary}


def speed(python: str, onednn: str) -> dict:
    code = SPEED.format(plugin=str(ROOT / "plugins" / "deepseg_unet64"))
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1],
                "rc": proc.returncode}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(python: str, runs: int, tests: list[str], workers: int, root: Path) -> dict:
    version = subprocess.run([python, "-c", "import tensorflow as t; print(t.__version__)"],
                             capture_output=True, text=True, env={
                                 **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout.strip()
    result = {"python": python, "tensorflow": version, "tests": tests, "runs": []}
    for i in range(runs):
        result["runs"].append(run_tests(python, tests, workers, root))
        print(f"  {version} run {i + 1}/{runs}: {result['runs'][-1]}", flush=True)
    result["eigen"], result["onednn"] = speed(python, "0"), speed(python, "1")
    return result


def row(r: dict) -> str:
    """The release's markdown row: aborted runs, and CPU seconds per tile (wall times on a
    shared machine swing with its load; CPU seconds much less)."""
    aborted = sum(run["aborted"] for run in r["runs"])
    seconds = sum(run["seconds"] for run in r["runs"])
    eigen, onednn = r["eigen"].get("cpu_s_per_tile"), r["onednn"].get("cpu_s_per_tile")
    saved = f"{100 * (1 - onednn / eigen):.0f} %" if eigen and onednn else "n/a"
    shown = [f"{v:.3f}" if v else "n/a" for v in (eigen, onednn)]
    return (f"| {r['tensorflow']} | {aborted} of {len(r['runs'])} ({seconds:.0f} s of tests) | "
            f"{shown[0]} | {shown[1]} | {saved} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", action="append", required=True,
                        help="interpreter of a venv with one TensorFlow release (repeatable)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--tests", nargs="+", default=DEFAULT_TESTS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, default=Path("onednn.json"))
    args = parser.parse_args()
    results = []
    for python in args.python:
        print(f"== {python}", flush=True)
        results.append(check(python, args.runs, args.tests, args.workers, args.root))
        args.out.write_text(json.dumps(results, indent=1))
    print("| TensorFlow | runs that aborted, oneDNN on | UNet64 CPU s per tile, Eigen | "
          "oneDNN | CPU saved by oneDNN |\n|---|---|---|---|---|")
    for r in results:
        print(row(r))


if __name__ == "__main__":
    main()

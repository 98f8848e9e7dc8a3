"""`deepseg dataprep` SIGKILLed at seeded random moments, then rerun: the final store equals an
uninterrupted run's (every dataset and attribute), and a killed run never leaves a store that
passes for complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from faults import ENV
from scenes import CRS, write_experiment, write_raster

KILLS = 10
SEED = 13


def scene(folder, size=1280):
    """Noise with bright squares, labelled everywhere (a background polygon under squares),
    so every tile is written and the writing phase lasts long enough to be hit."""
    import geopandas as gpd
    from affine import Affine
    from shapely.geometry import box

    rng = np.random.default_rng(0)
    transform = Affine(0.5, 0, 1_750_000, 0, -0.5, 5_900_000)
    image = rng.normal(40, 10, (3, size, size))
    shapes, classes = [box(*(transform @ (0, size)), *(transform @ (size, 0)))], ["background"]
    for _ in range(200):
        r, c = rng.integers(0, size - 24, 2)
        image[:, r:r + 16, c:c + 16] += 120
        x0, y1 = transform @ (c, r + 16)
        x1, y0 = transform @ (c + 16, r)
        shapes.append(box(x0, y1, x1, y0))
        classes.append("square")
    img = write_raster(folder / "scene.tif", np.clip(image, 0, 255).astype("uint8"), transform)
    gpkg = folder / "scene.gpkg"
    gpd.GeoDataFrame({"class": classes}, geometry=shapes, crs=CRS).to_file(gpkg, driver="GPKG")
    return img, gpkg


def start(exp):
    return subprocess.Popen([sys.executable, "-m", "deepseg_core.cli", "dataprep", str(exp)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)


def writing(folder):
    return any(".tmp-" in p.name for p in folder.iterdir()) if folder.exists() else False


def run_to_end(exp, store):
    """A full run; returns (seconds from the first temporary file to the end, output)."""
    proc, began = start(exp), None
    while proc.poll() is None:
        if began is None and writing(store.parent):
            began = time.monotonic()
        time.sleep(0.002)
    out, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    return time.monotonic() - (began or time.monotonic()), out.decode()


def content(path):
    """Every dataset's values and every attribute of a store, by name."""
    found = {}
    with h5py.File(path, "r") as file:
        found["attrs"] = {k: np.asarray(v).tolist() for k, v in file.attrs.items()}
        file.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                        if isinstance(obj, h5py.Dataset) else None)
    return found


def assert_same(found, expected):
    assert sorted(found) == sorted(expected)
    assert found["attrs"] == expected["attrs"]
    for name in expected:
        if name != "attrs":
            np.testing.assert_array_equal(found[name], expected[name], err_msg=name)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_dataprep_killed_at_random_moments_then_rerun_equals_an_uninterrupted_run(tmp_path):
    image, gpkg = scene(tmp_path)
    store = tmp_path / "stores" / "store.h5"
    exp = write_experiment(tmp_path, image, gpkg, tilesize=64, overlap=16,
                           store={"path": str(store)},
                           classes=[{"name": "background", "value": "background"},
                                    {"name": "square", "value": "square"}])
    write_seconds, out = run_to_end(exp, store)
    assert "tiles written" in out
    expected = content(store)
    began = time.monotonic()
    run_to_end(exp, store)  # the reuse check of a complete store, from the process start
    # how long each kind of run works; shortened whenever a run ends before its kill, so a
    # change of the machine's load does not leave every kill too late
    spans = {True: write_seconds, False: time.monotonic() - began}
    rng = np.random.default_rng(SEED)
    kills = equal = attempts = 0
    while kills < KILLS and attempts < 4 * KILLS:
        attempts += 1
        rebuild = kills % 3 != 2  # two kills in three hit a build, one hits the reuse check
        if rebuild:
            store.unlink()
        proc = start(exp)
        began, deadline = time.monotonic(), time.monotonic() + 120
        while rebuild and not writing(store.parent) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        began = time.monotonic() if rebuild else began
        # a reuse check's first part is the interpreter starting: kill in its latter part
        moment = began + rng.uniform(0.05 if rebuild else 0.4, 0.9) * spans[rebuild]
        while proc.poll() is None and time.monotonic() < moment:
            time.sleep(0.002)
        if proc.poll() is not None:  # finished before the chosen moment: not a kill
            spans[rebuild] = min(spans[rebuild], time.monotonic() - began)
            proc.communicate()
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        kills += 1
        if store.exists():  # whatever is at the final name is complete and whole
            assert_same(content(store), expected)
        run_to_end(exp, store)
        assert_same(content(store), expected)
        assert not [p for p in store.parent.iterdir() if ".tmp-" in p.name]
        equal += 1
    print(f"kills: {kills}, resumed equal: {equal}")
    assert kills >= KILLS, f"only {kills} of {attempts} runs were killed before they finished"
    assert equal == kills

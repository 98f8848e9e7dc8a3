"""The system's GDAL (with the KEA plugin) and QGIS, run from the tests in subprocesses.

CI installs them as root (``.ci/run``: ``../shared/tools/kea-gdal-build.sh`` and Debian's
``python3-qgis``); they run under Debian's ``/usr/bin/python3``, never the test venv, so the
venv's rasterio/GDAL wheels are not mixed with the system's libgdal. Where they are missing, the
tests that need them skip and say why.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tests.support import ROOT
from tests.support.gis_scripts import DESCRIBE

SYSTEM_PYTHON = "/usr/bin/python3"
KEA_BUILD = ROOT.parent / "shared" / "tools" / "kea-gdal-build.sh"


def system_env(**extra) -> dict:
    """The environment without the venv (no VIRTUAL_ENV, PYTHONPATH or venv on PATH)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "GDAL_DATA", "PROJ_LIB",
                        "PROJ_DATA", "GDAL_DRIVER_PATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


def _how_to_get(what: str) -> str:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{what} is not installed and cannot be here (needs root and apt-get)"
    return f"{what} is not installed (.ci/run installs it as root)"


@functools.cache
def kea_gdal_missing() -> str | None:
    """Why the KEA-enabled system GDAL cannot be used here (None when it can)."""
    what = f"a KEA-enabled GDAL with {SYSTEM_PYTHON}'s osgeo.gdal (bash {KEA_BUILD})"
    if not shutil.which("gdalinfo", path=system_env()["PATH"]) or not Path(SYSTEM_PYTHON).exists():
        return _how_to_get(what)
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "from osgeo import gdal; assert gdal.GetDriverByName('KEA')"],
        env=system_env(), capture_output=True, text=True, timeout=60)
    if probe.returncode:
        return _how_to_get(what)
    return None


@functools.cache
def qgis_missing() -> str | None:
    """Why Debian's QGIS (python3-qgis) cannot be used here (None when it can)."""
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], env=system_env(),
                           capture_output=True, text=True, timeout=60) \
        if Path(SYSTEM_PYTHON).exists() else None
    if probe is None or probe.returncode:
        return _how_to_get("QGIS (Debian's python3-qgis)")
    return None


def qgis_module(group: str) -> list:
    """The marks of a QGIS test module: interop, skipped (with the reason) where QGIS cannot be
    used, and one xdist group, so one worker runs the module and makes its fixtures once."""
    import pytest

    why = qgis_missing()
    return [pytest.mark.interop, pytest.mark.skipif(why is not None, reason=str(why)),
            pytest.mark.xdist_group(group)]


def system_python(code: str, *args, timeout: int = 180, env: dict | None = None):
    """Run ``code`` under the system Python with ``args`` (JSON-encoded in argv[1]); the JSON
    it prints on its last stdout line."""
    proc = subprocess.run([SYSTEM_PYTHON, "-c", code, json.dumps([str(a) if isinstance(a, Path)
                                                                 else a for a in args])],
                          env=env or system_env(), capture_output=True, text=True,
                          timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        raise AssertionError(f"system python failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
                             f"\n{proc.stdout[-2000:]}")
    return json.loads(lines[-1])


def gdal(*argv, timeout: int = 120) -> str:
    """Run a GDAL command-line tool (gdalinfo, gdal_translate, gdaladdo); its stdout."""
    proc = subprocess.run(list(map(str, argv)), env=system_env(), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode:
        raise AssertionError(f"{argv[0]} failed (rc {proc.returncode}): {proc.stderr[-3000:]}")
    return proc.stdout


def gdalinfo_json(path, *options) -> dict:
    """``gdalinfo -json`` of ``path``."""
    return json.loads(gdal("gdalinfo", "-json", *options, path))


def describe(tmp_path, *paths):
    """GDAL's view of each file, with its pixels loaded back from GDAL's .npy dumps."""
    pairs = [(str(p), str(tmp_path / f"gdal_{i}")) for i, p in enumerate(paths)]
    items = system_python(DESCRIBE, pairs)
    for item, (_, folder) in zip(items, pairs):
        for k, band in enumerate(item["bands"], start=1):
            band["pixels"] = np.load(f"{folder}/band{k}.npy")
            band["overview_pixels"] = [np.load(f"{folder}/band{k}_ovr{i + 1}.npy")
                                       for i in range(len(band["overviews"]))]
    return items

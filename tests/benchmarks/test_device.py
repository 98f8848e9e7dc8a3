"""The GPU kit's bookkeeping (benchmarks/device/kit.py), without a network: the size check of
working tree plus wheels, the pins matched one to one, and the distribution metadata that
lets the plugin manager find the plugins of a working tree. Its CPU rehearsal, which fetches
the wheels, runs in `nox -s jax` (benchmarks/device/run.sh --small --rehearse)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.benchmarks import load, present

pytestmark = present("device/kit")


@pytest.fixture(scope="module")
def kit():
    return load("device/kit")


def fake_wheels(kit, folder: Path, size: int = 1000) -> None:
    folder.mkdir()
    for pin in kit.pins():
        name, version = pin.split("==")
        (folder / f"{kit.normalized(name)}-{version}-py3-none-any.whl").write_bytes(b"0" * size)


def test_the_pins_are_exact_and_leave_tensorflow_and_jax_behind(kit):
    pins = dict(pin.split("==") for pin in kit.pins())
    assert pins["keras"].startswith("3.15.") and "rasterio" in pins and "pydantic" in pins
    assert not {"tensorflow", "jax", "jaxlib", "geopandas", "pyogrio", "shapely"} & set(pins)


def test_the_check_adds_the_travelling_tree_to_the_wheels_and_names_what_is_wrong(kit,
                                                                                   tmp_path,
                                                                                   capsys):
    fake_wheels(kit, tmp_path / "wheels", size=2**20)
    total = kit.check(tmp_path / "wheels")
    tree = sum(p.stat().st_size for p in kit.travelling_files() if p.is_file()) / 2**20
    assert total == pytest.approx(tree + len(kit.pins()))
    assert "limit 60 MiB" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"^error: the kit is .* MiB, over 1 MiB"):
        kit.check(tmp_path / "wheels", limit=1)
    next((tmp_path / "wheels").glob("keras-*")).unlink()
    with pytest.raises(SystemExit, match=r"keras==3\.15\.\d+: missing; run 'python "
                                         r"benchmarks/device/kit.py fetch'"):
        kit.check(tmp_path / "wheels")


def test_the_metadata_lets_entry_points_find_the_working_tree_s_plugins(kit, tmp_path):
    kit.distribution_info(tmp_path)
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); from importlib import metadata; "
            "eps = metadata.entry_points(group='deepseg'); "
            "print(json.dumps(sorted((e.name, e.dist.name) for e in eps "
            "if e.dist._path.parent.as_posix() == sys.argv[1])))")
    found = subprocess.run([sys.executable, "-c", code, tmp_path.as_posix()],
                           capture_output=True, text=True, check=True).stdout
    assert json.loads(found) == [["maskrcnn", "deepseg-maskrcnn"], ["resunet", "deepseg-resunet"],
                           ["unet64", "deepseg-unet64"]]
    scripts = (next(tmp_path.glob("deepseg_core-*.dist-info")) / "entry_points.txt").read_text()
    assert "[console_scripts]\ndeepseg = deepseg_core.cli:main" in scripts

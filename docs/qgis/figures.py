"""The QGIS renders in docs/stages.md, from the demo's outputs (not drawn by hand).

    .venv/bin/python docs/qgis/figures.py [--workdir DIR]

Runs ``deepseg demo`` (one crossval fold) into DIR unless its outputs are there, then opens the
prediction raster, the fold's error map and the class polygons in QGIS (Debian's python3-qgis,
docs/qgis/render.py) with their own styles, renders each to docs/img/qgis_*.png and prints the
legend QGIS shows for each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMG = HERE.parent / "img"
SYSTEM_PYTHON = "/usr/bin/python3"
SIZE = [384, 384]  # px of each figure: small files, classes still readable


def demo(workdir: Path) -> Path:
    """The demo experiment's output folder, running the demo when it is not there."""
    out = workdir / "demo"
    if not (out / "predictions" / "prediction.gpkg").exists():
        deepseg = Path(sys.executable).with_name("deepseg")
        subprocess.run([str(deepseg), "demo", "--workdir", str(workdir), "--crossval-folds",
                        "0"], check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("deepseg-demo"))
    out = demo(parser.parse_args().workdir.resolve())
    IMG.mkdir(exist_ok=True)
    items = [{"path": str(out / "predictions" / "prediction.tif"), "size": SIZE,
              "png": str(IMG / "qgis_prediction.png")},
             {"path": str(out / "crossval" / "fold0" / "fold0_errors.tif"), "size": SIZE,
              "png": str(IMG / "qgis_errors.png")},
             {"path": str(out / "predictions" / "prediction.gpkg"), "layer": "classes",
              "size": SIZE, "png": str(IMG / "qgis_polygons.png")}]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM="offscreen", PATH="/usr/local/bin:/usr/bin:/bin",
               XDG_RUNTIME_DIR=str(out))
    run = subprocess.run([SYSTEM_PYTHON, str(HERE / "render.py"), json.dumps(items)], env=env,
                         capture_output=True, text=True, check=True)
    for item in json.loads(run.stdout.strip().splitlines()[-1])["items"]:
        print(f"{item['png']}: {item['renderer']}, legend {item['legend']}")


if __name__ == "__main__":
    main()

"""The GPU kit: what a GPU machine without a package registry needs to run benchmarks/gpu.py.

    python benchmarks/device/kit.py fetch      # here: the pinned wheels into .whl/, then check
    python benchmarks/device/kit.py check      # working tree + wheels under the limit (60 MiB)
    python benchmarks/device/kit.py install --target DIR   # there: wheels + plugin metadata
    python benchmarks/device/kit.py absent --target DIR    # rehearsal: the image's gaps

``fetch`` downloads exactly the versions in wheels.txt for CPython 3.12 on manylinux x86_64
(the GPU image's Python), without dependencies: wheels.txt names every one the image lacks.
``install`` unpacks them into DIR with pip (no index, no dependencies) and writes the
distribution metadata of deepseg-core and its model plugins there, so the entry points find
the plugins while their code runs from this working tree (PYTHONPATH). ``absent`` makes
stand-ins in DIR that fail to import for what the image lacks and the kit leaves behind
(TensorFlow, the vector libraries, pycm), so a CPU rehearsal proves they are not needed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WHEELS = ROOT / ".whl"
LIMIT_MIB = 60.0
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
PACKAGES = (".", "plugins/deepseg_unet64", "plugins/deepseg_resunet", "plugins/deepseg_maskrcnn")
ABSENT = ("tensorflow", "geopandas", "pyogrio", "pyproj", "shapely", "pycm")


def pins() -> list[str]:
    """wheels.txt's ``name==version`` lines."""
    lines = (HERE / "wheels.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def fetch(folder: Path, python: str = "3.12") -> None:
    """pip download of every pin for ``python`` on manylinux x86_64 into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--python-version", python, "--implementation",
                    "cp", *platforms, "--dest", str(folder), *pins()], check=True)


def travelling_files() -> list[Path]:
    """What the device tool sends: tracked files and untracked files git does not ignore."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in dict.fromkeys(out.split("\0")) if name]


def check(folder: Path, limit: float = LIMIT_MIB) -> float:
    """MiB of the working tree plus the wheels; exits with one line when over ``limit`` or
    when a pinned wheel is missing or doubled."""
    wheels = sorted(folder.glob("*.whl"))
    problems = []
    for pin in pins():
        name, version = pin.split("==")
        found = [w for w in wheels if normalized(w.name.split("-")[0]) == normalized(name)]
        if len(found) != 1 or f"-{version}-" not in found[0].name:
            problems.append(f"{pin}: {[w.name for w in found] or 'missing'}")
    tree = sum(p.stat().st_size for p in travelling_files() if p.is_file()) / 2**20
    carried = sum(w.stat().st_size for w in wheels) / 2**20
    for wheel in wheels:
        print(f"{wheel.stat().st_size / 2**20:7.2f} MiB  {wheel.name}")
    total = tree + carried
    print(f"working tree {tree:.2f} MiB + wheels {carried:.2f} MiB = {total:.2f} MiB "
          f"(limit {limit:g} MiB; the device tool takes 64)")
    if problems:
        sys.exit(f"error: {folder}: wheels do not match wheels.txt: {'; '.join(problems)}; "
                 "run 'python benchmarks/device/kit.py fetch'")
    if total > limit:
        sys.exit(f"error: the kit is {total:.2f} MiB, over {limit:g} MiB: carry fewer wheels "
                 "or untrack large files")
    return total


def distribution_info(target: Path) -> None:
    """``<name>-<version>.dist-info`` of the core and its model plugins in ``target``: their
    entry points, so the plugin manager finds them as if pip had installed them."""
    for folder in PACKAGES:
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        version = project.get("version")
        if version is None:  # the core's is deepseg_core.__version__
            text = (ROOT / "deepseg_core" / "__init__.py").read_text()
            version = re.search(r'__version__ = "([^"]+)"', text).group(1)
        info = target / f"{normalized(project['name'])}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                       f"Version: {version}\n")
        groups = {f"[{group}]": entries for group, entries in
                  project.get("entry-points", {}).items()}
        if project.get("scripts"):
            groups["[console_scripts]"] = project["scripts"]
        (info / "entry_points.txt").write_text("".join(
            f"{head}\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
            for head, entries in groups.items()))
        (info / "RECORD").write_text("")


def install(folder: Path, target: Path) -> None:
    """The wheels in ``folder`` into ``target`` (pip, no index, no dependencies), then the
    deepseg distributions' metadata."""
    wheels = sorted(str(w) for w in folder.glob("*.whl"))
    if not wheels:
        sys.exit(f"error: {folder}: no wheels; run 'python benchmarks/device/kit.py fetch' "
                 "here and carry .whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index",
                    "--no-deps", "--no-compile", "--no-cache-dir", "--upgrade", "--target",
                    str(target), *wheels], check=True)
    distribution_info(target)
    print(f"installed {len(wheels)} wheels and {len(PACKAGES)} deepseg distributions into "
          f"{target}")


def absent(target: Path) -> None:
    """Stand-ins in ``target`` that fail to import, for the packages the kit leaves behind."""
    for name in ABSENT:
        package = target / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(
            f'raise ImportError("{name} is not on the GPU machine (kit rehearsal)")\n')
    print(f"rehearsal: {', '.join(ABSENT)} made unimportable in {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch", "check", "install", "absent"])
    parser.add_argument("--wheels", type=Path, default=WHEELS, help="default: .whl/")
    parser.add_argument("--target", type=Path, help="install/absent: the folder")
    parser.add_argument("--python", default="3.12", help="fetch: the target's Python")
    parser.add_argument("--limit", type=float, default=LIMIT_MIB, help="check: MiB")
    args = parser.parse_args()
    if args.command in ("install", "absent") and args.target is None:
        parser.error(f"{args.command} needs --target")
    if args.command == "fetch":
        fetch(args.wheels, args.python)
        check(args.wheels, args.limit)
    elif args.command == "check":
        check(args.wheels, args.limit)
    elif args.command == "install":
        install(args.wheels, args.target)
    else:
        absent(args.target)


if __name__ == "__main__":
    main()

"""The layout's rules, kept by the suite: no import cycle, no stage importing another, modules
that fit on a few screens, and no top-level module or package with a single client (it belongs
inside that client's package)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "deepseg_core"
STAGES = ("dataprep", "train", "crossval", "predict")
MAX_LINES = 250
#: top-level parts reached from outside the package's own imports, and by whom
ENTRY_POINTS = {
    "deepseg_core.cli": "the `deepseg` console script (pyproject.toml)",
    "deepseg_core.testing": "the conformance kit that plugin authors' test suites import",
    "deepseg_core.builtin": "built-in plugins, loaded by name (plugins.manager.BUILTIN_PLUGINS)",
    "deepseg_core.hpc": "a built-in command plugin, loaded by name",
    "deepseg_core.demo": "a built-in command plugin, loaded by name",
    "deepseg_core.export": "a built-in command plugin, loaded by name",
}


def modules() -> dict[str, Path]:
    found = {}
    for path in CORE.rglob("*.py"):
        parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The deepseg_core modules ``name`` imports (statically, anywhere in the file)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets += [base] + [f"{base}.{a.name}" for a in node.names]
    out = set()
    for target in targets:
        while target and target not in known:
            target = target.rsplit(".", 1)[0] if "." in target else ""
        if target and target != name:
            out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def stage_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "stages" and parts[2] in STAGES else None


def top(name: str) -> str:
    return ".".join(name.split(".")[:2])


def client(name: str) -> str:
    """Who a module counts as, as a client: its top-level package, or its stage (each stage
    is a client of its own)."""
    return f"deepseg_core.stages.{stage_of(name)}" if stage_of(name) else top(name)


def test_no_import_cycles():
    edges, seen, cycles = graph(), {}, []

    def visit(node, trail):
        seen[node] = "open"
        for nxt in edges[node]:
            if seen.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in seen:
                visit(nxt, trail + [nxt])
        seen[node] = "done"

    for node in sorted(edges):
        if node not in seen:
            visit(node, [node])
    assert cycles == []


def test_no_stage_imports_another_stage():
    crossing = sorted((a, b) for a, targets in graph().items() for b in targets
                      if stage_of(a) and stage_of(b) and stage_of(a) != stage_of(b))
    assert crossing == []


def test_every_module_fits_on_a_few_screens():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_top_level_module_or_package_has_a_single_client():
    clients: dict[str, set[str]] = {}
    for source, targets in graph().items():
        for target in targets:
            if top(target) != top(source):
                clients.setdefault(top(target), set()).add(client(source))
    tops = {top(name) for name in modules()} - {"deepseg_core"} - set(ENTRY_POINTS)
    lonely = {name: sorted(clients.get(name, ())) for name in sorted(tops)
              if len(clients.get(name, ())) < 2}
    assert lonely == {}, "move each into the package of its one client"

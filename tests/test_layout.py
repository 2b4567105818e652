"""The house: which parts the package has, which way their imports run, and no circle anywhere.

Read from the source (every import statement, in functions and TYPE_CHECKING blocks too), so a
lazy import cannot hide a circle or a wrong-way tie.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "supervisor"
#: The composition root and what both ends of the control socket share.
TOP = {"__init__", "__main__", "app", "runtime", "protocol"}
PARTS = {"config", "core", "ctl", "firmware", "lab", "observe", "publish", "sources", "workers"}
#: Parts (or top modules) a part must never import, as its __init__ says.
NEVER: dict[str, set[str]] = {
    "core": {"app", "runtime", "sources", "workers", "publish", "observe", "ctl", "lab"},
    "config": {"app", "runtime", "sources", "workers", "publish", "observe", "ctl", "lab"},
    "observe": {"app", "runtime", "core", "config", "sources", "workers", "publish", "ctl",
                "lab"},
    "sources": {"app", "runtime", "workers", "publish", "ctl", "lab"},
    "workers": {"app", "runtime", "publish", "ctl", "lab"},
    "publish": {"app", "runtime", "workers", "ctl", "lab"},
    "protocol": PARTS | TOP - {"protocol"},
    "app": {"ctl", "lab"},
    "runtime": {"app", "ctl", "lab", "publish"},
}
#: What core may not touch: it decides, the adapters do.
IO_MODULES = {"asyncio", "socket", "select", "selectors", "threading", "subprocess", "pyudev",
              "sdnotify", "jeepney"}


def module_names() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = module_names()


def imported(path: Path, *, top_level_only: bool = False) -> Iterator[tuple[str, int]]:
    """(module, line) for every import in the file; names resolved to modules where they are."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield (full if full in MODULES else node.module), node.lineno


def internal_imports(name: str) -> set[str]:
    return {target for target, _ in imported(MODULES[name]) if target in MODULES
            and target not in (name, "supervisor")}


def part_of(name: str) -> str:
    return name.split(".")[1] if name.count(".") else "__init__"


def test_the_top_holds_the_composition_root_and_what_everyone_shares() -> None:
    assert {p.stem for p in PACKAGE.glob("*.py")} == TOP
    assert {p.parent.name for p in PACKAGE.glob("*/__init__.py")} == PARTS


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_says_what_it_owns(part: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text()))
    assert doc, f"supervisor/{part}/__init__.py says what the part owns"
    if part in NEVER:
        assert "never" in doc.lower(), f"supervisor/{part}/__init__.py says what it never imports"


def test_no_import_circle() -> None:
    graph = {name: internal_imports(name) for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert circles == []


def test_a_circle_would_be_found() -> None:
    """The walk reads lazy imports too: the circle the configuration once had is one."""
    assert "supervisor.config.uciform" in internal_imports("supervisor.config.loader")
    assert "supervisor.config.loader" not in {
        target for name in ("supervisor.config.uciform", "supervisor.config.validate",
                            "supervisor.config.settings", "supervisor.config.checks")
        for target in internal_imports(name)}


@pytest.mark.parametrize("part", sorted(NEVER))
def test_imports_run_the_right_way(part: str) -> None:
    wrong = []
    for name, path in MODULES.items():
        if part_of(name) != part:
            continue
        for target, line in imported(path):
            if target in MODULES and part_of(target) in NEVER[part]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert wrong == []


def test_core_imports_no_io() -> None:
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {target}"
             for name, path in MODULES.items() if part_of(name) == "core"
             for target, line in imported(path) if target.split(".")[0] in IO_MODULES]
    assert wrong == []


def test_the_command_line_stays_light_at_import() -> None:
    """supervisorctl's modules import, at their top, only the standard library, `protocol` and
    each other: `notify` must not pay for the service, the configuration or the lab."""
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {target}"
             for name, path in MODULES.items() if part_of(name) == "ctl"
             for target, line in imported(path, top_level_only=True)
             if target.startswith("supervisor") and target != "supervisor.protocol"
             and not target.startswith("supervisor.ctl")]
    assert wrong == []

"""The architecture the folder tree shows: no import cycle among harness modules, and the report
code never reaches back into the plugins."""

from __future__ import annotations

import ast
from pathlib import Path

import harness

ROOT = Path(harness.__file__).parent


def module_name(path: Path) -> str:
    parts = ["harness", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Harness modules a file imports, at import time or inside a function (a lazy import hides a cycle, it
    does not remove it)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("harness"):
                # `from pkg import mod` imports the module mod; `from mod import name` the module mod
                out |= {f"{target}.{alias.name}" for alias in node.names} | {target}
        elif isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name.startswith("harness")}
    return out


def graph() -> dict[str, set[str]]:
    """module → the harness modules it imports. A package's own ``__init__`` is left out of its submodules'
    edges: Python runs it first, whichever submodule is imported."""
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    edges = {}
    for name, path in files.items():
        targets = {t for t in imports(path) if t in files and t != name}
        # a name imported from a package is a submodule when one exists: drop the package edge then
        edges[name] = {t for t in targets if not any(o.startswith(t + ".") for o in targets)
                       and not name.startswith(t + ".")}
    return edges


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_reports_read_the_store_not_the_plugins():
    """Reports describe runs from what the runs recorded: no registry, method or task code is imported."""
    for path in (ROOT / "reporting").rglob("*.py"):
        imported = {m for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for m in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])}
        assert not {m for m in imported if m.split(".")[-1] in ("registry", "methods", "pipeline")
                    or m.startswith("harness_tasks")}, path


def test_the_paper_package_is_facts_only():
    """What the paper fixes (orders, data sizes, published numbers, claims) imports nothing else of the harness:
    reports, grids and benches read it, it reads none of them."""
    for path in (ROOT / "paper").rglob("*.py"):
        assert {m for m in imports(path) if not m.startswith("harness.paper")} == set(), path

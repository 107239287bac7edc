"""The architecture the folder tree shows: the harness modules form layers and import only from their own layer
or a lower one, with no import cycle among them; and the report code never reaches back into the plugins."""

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


#: The layers, lowest first; a module may import from its own layer and the layers below it, never from one
#: above (lazy imports inside functions count). A module belongs to the entry that names it or the package it is
#: in, the longest such entry; ``harness`` names the package's own ``__init__`` only. There are no exceptions:
#: an import that runs up a layer is fixed, not listed.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation: errors, progress output, TOML text, process settings, the process group, compute accounting, "
     "code identity, atomic checksummed files, the library versions needed",
     ("harness.errors", "harness.progress", "harness.tomltext", "harness._runtime", "harness.accounting",
      "harness.identity", "harness.store.io", "harness.distributed", "harness.requirements")),
    ("configuration and the plugin interfaces: config, registries, the task interface and its data readers, "
     "paper recipes and the paper's published facts",
     ("harness.config", "harness.registry", "harness.task", "harness.recipe", "harness.datasets", "harness.paper")),
    ("the store: stage cache, training checkpoints, run folders and their readers (configs, files and tensors; "
     "no model code)", ("harness.store",)),
    ("models, data and methods: model adapters, batches, methods, the step, scorers",
     ("harness.lm", "harness.data", "harness.methods", "harness.step", "harness.metrics")),
    ("training and evaluation: the training loop, decoding and scoring, the plugin test kit, experiment trackers",
     ("harness.train", "harness.evaluate", "harness.testing", "harness.tracking")),
    ("the pipeline of one cell", ("harness.pipeline",)),
    ("many cells and what they give: grids, benchmarks, reports", ("harness.grid", "harness.bench",
                                                                    "harness.reporting")),
    ("entry points: the command line and the package's public names", ("harness.cli", "harness")),
]


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``module``'s layer, or None when no entry names it."""
    best, found = "", None
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            names = module == entry or (entry != "harness" and module.startswith(entry + "."))
            if names and len(entry) > len(best):
                best, found = entry, index
    return found


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """``a → b`` for each import of a module ``b`` from a higher layer than ``a``'s (modules without a layer are
    :func:`test_every_module_has_a_layer`'s to report)."""
    def name(layer: int) -> str:
        return LAYERS[layer][0].split(":")[0]

    return [f"{a} ({name(layer_of(a))}) → {b} ({name(layer_of(b))})"
            for a in sorted(edges) for b in sorted(edges[a])
            if None not in (layer_of(a), layer_of(b)) and layer_of(b) > layer_of(a)]


def test_every_module_has_a_layer():
    assert [m for m in sorted(graph()) if layer_of(m) is None] == []


def test_no_import_runs_up_a_layer():
    assert upward_imports(graph()) == []


def test_the_layer_rule_sees_an_import_up():
    """The check is not vacuous: a lazy import of the training loop from the store, or of the CLI from the
    config, is caught; an import within a layer or down is not."""
    assert len(upward_imports({"harness.store.cache": {"harness.train"}, "harness.config": {"harness.cli"},
                               "harness.train": {"harness.store.checkpoints", "harness.evaluate"}})) == 2
    assert layer_of("harness.store.io") < layer_of("harness.task") < layer_of("harness.store.cache")
    assert layer_of("harness.paper.facts") == layer_of("harness.config")           # a package placed as a whole
    assert layer_of("harness.pipeline.load") == layer_of("harness.pipeline.run")
    assert layer_of("harness.reporting.ranking") == layer_of("harness.reporting.tables")
    assert layer_of("harness") == len(LAYERS) - 1 and layer_of("harnessx") is None


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

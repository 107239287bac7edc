"""Code identity: what a stage key holds of the code that computes the stage."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from harness import identity
from harness.identity import STAGE_ROOTS, code_identity, digest, file_digest, plugin_files


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_docstrings_and_comments_do_not_change_a_digest_code_does(tmp_path):
    f = write(tmp_path / "m.py", '''
        """Module doc."""
        def loss(x):
            """Doc."""
            return x * 2  # twice
        ''')
    before = file_digest(f)
    write(f, '''
        """Another module doc, longer."""
        def loss(x):
            """Other doc."""
            # a new comment
            return x * 2
        ''')
    assert file_digest(f) == before
    write(f, '''
        def loss(x):
            return x * 3
        ''')
    assert file_digest(f) != before


def test_a_plugin_package_is_covered_whole(tmp_path, monkeypatch):
    pkg = tmp_path / "my_task_pkg"
    pkg.mkdir()
    write(pkg / "__init__.py", "from .twin import make\nclass MyTask:\n    pass\n")
    write(pkg / "twin.py", "def make():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("my_task_pkg")
    try:
        assert [p.name for p in plugin_files(module.MyTask)] == ["__init__.py", "twin.py"]
        before = digest(code_identity("evaluation", (module.MyTask,)))
        write(pkg / "twin.py", "def make():\n    return 2\n")
        identity.forget()   # files are read once per process
        assert digest(code_identity("evaluation", (module.MyTask,))) != before
    finally:
        for name in [n for n in sys.modules if n.startswith("my_task_pkg")]:
            del sys.modules[name]


def test_a_namespace_package_inside_another_is_found_without_importing_it(tmp_path, monkeypatch):
    """``pycocoevalcap.bleu.bleu`` on a path outside the installed packages (no ``__init__.py`` in either folder):
    CPython's PathFinder needs the parent package imported to find ``pycocoevalcap.bleu`` (KeyError otherwise, seen
    on a machine whose dependencies came on PYTHONPATH); the closure finds and reads it without importing anything."""
    inner = tmp_path / "probe_ns" / "inner"
    inner.mkdir(parents=True)
    write(inner / "leaf.py", "def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = identity.Codebase()
    assert code.spec("probe_ns.inner").submodule_search_locations == [str(inner)]
    assert code.spec("probe_ns.inner.leaf").origin == str(inner / "leaf.py")
    assert code.source("probe_ns.inner.leaf") is not None and code.followed("probe_ns.inner.leaf")
    assert code.spec("probe_ns.inner.missing") is None
    assert not any(name.startswith("probe_ns") for name in sys.modules)


def test_a_root_follows_what_it_names_and_not_what_never_runs(tmp_path, monkeypatch):
    """A root function brings the functions it calls (``self.x`` too) and the modules its names come from,
    imports inside it included; a module imported but not named, or imported for type checking only, stays out."""
    pkg = tmp_path / "probe_roots"
    pkg.mkdir()
    write(pkg / "__init__.py", "")
    for name in ("used", "lazy", "via_self", "typing_only", "unused"):
        write(pkg / f"{name}.py", "def f():\n    return 1\n")
    write(pkg / "root.py", """
        from __future__ import annotations
        from typing import TYPE_CHECKING
        from . import unused
        from .used import f as used
        from .via_self import f as helper
        if TYPE_CHECKING:
            from .typing_only import f as typing_only

        class Runner:
            def load(self) -> typing_only:
                from . import lazy
                return self.draw() + used() + lazy.f()

            def draw(self):
                return helper()

            def other(self):
                return unused.f()
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    parts, modules = identity.Codebase().root_parts("probe_roots.root:Runner.load")
    assert set(parts) == {"probe_roots.root:Runner.load", "probe_roots.root:Runner.draw"}
    assert modules == {"probe_roots.used", "probe_roots.lazy", "probe_roots.via_self"}


def test_reports_grids_and_the_cli_are_in_no_stage():
    """Editing what only lays out, schedules or stores results throws no stage away: no stage's import path,
    nor any built-in task's or method's, reaches them."""
    from harness.registry import METHODS, TASKS

    identities = [code_identity(stage) for stage in STAGE_ROOTS]
    identities += [code_identity("data", (TASKS.get(name),)) for name in TASKS.names()]
    identities += [code_identity("student", (METHODS.get(name),)) for name in METHODS.names()]
    for code in identities:
        assert not [m for m in code if m.startswith(("harness.reporting", "harness.grid", "harness.cli",
                                                     "harness.store.runs", "harness.store.cache",
                                                     "harness.pipeline.graph", "harness.pipeline.stages:STAGES"))]


def test_the_stage_roots_are_the_builders_the_pipeline_runs():
    """Each stage's roots are its build and load functions in ``STAGES``: a renamed or added builder cannot
    leave the identity behind."""
    from harness.pipeline.stages import STAGES

    for stage, functions in STAGES.items():
        assert STAGE_ROOTS[stage] == tuple(f"{f.__module__}:{f.__qualname__}" for f in (functions.build, functions.load)
                                           if f is not None)


def test_an_unknown_root_is_an_error_not_an_empty_identity(monkeypatch):
    monkeypatch.setitem(STAGE_ROOTS, "tokenizer", ("harness.pipeline.stages:no_such_builder",))
    identity.forget()
    with pytest.raises(LookupError, match="no_such_builder"):
        code_identity("tokenizer")
    identity.forget()


def test_a_stage_reused_under_other_library_versions_says_so(tmp_path):
    """Library versions are recorded with each stage, not keyed: a stage built under other versions is reused,
    and the log says which differ."""
    import json

    from harness.store.cache import StageCache
    from harness.store.io import STAGE_RECORD

    logged = []
    cache = StageCache(tmp_path, logged.append)
    built = cache.get_or_build("demo", {"a": 1}, {}, lambda out: (out / "f.txt").write_text("1") and {}, "demo")
    assert built.record["host"]["libraries"] == identity.library_versions()
    assert set(identity.LIBRARIES) | {"python"} == set(built.record["host"]["libraries"])
    record = json.loads((built.path / STAGE_RECORD).read_text())
    record["host"]["libraries"]["torch"] = "0.0.1"
    (built.path / STAGE_RECORD).write_text(json.dumps(record))
    reused = cache.get_or_build("demo", {"a": 1}, {}, lambda out: None, "demo")
    assert reused.reused and reused.key == built.key
    assert f"built with other libraries: torch 0.0.1 → {identity.library_versions()['torch']}" in logged[-1]


def test_a_predistill_cell_trains_with_its_own_seed_and_at_the_upstream_seed_is_the_shared_student():
    """Table 2's pre-distillation row varies over seeds like every other row; KD cells of every seed start from
    the one pre-distilled student of the upstream seed."""
    from harness.config import resolve_config
    from harness.pipeline import Pipeline

    def predistill_key(method, seed):
        return Pipeline(resolve_config("dart", method, "ci", seed)).plan["predistill"].key

    assert predistill_key("predistill", 42) == predistill_key("kl", 42) == predistill_key("kl", 43)
    assert predistill_key("predistill", 43) != predistill_key("predistill", 42)
    assert predistill_key("predistill", 43) != predistill_key("predistill", 44)


def test_a_stage_record_says_what_it_was_built_on(tmp_path):
    """CPU numbers depend on the processor and torch's thread count, which no key holds: the record keeps both."""
    import torch

    from harness.store.cache import StageCache

    cache = StageCache(tmp_path, lambda message: None)
    result = cache.get_or_build("demo", {"a": 1}, {}, lambda out: (out / "f.txt").write_text("1") and {}, "demo")
    host = result.record["host"]
    assert host["torch_threads"] == torch.get_num_threads() and host["processor"]


def test_a_run_manifest_names_the_host_of_each_stage(tmp_path):
    import torch

    from conftest import ci_grid_config
    from harness.pipeline import Pipeline

    outcome = Pipeline(ci_grid_config("dart", "seqkd", [("results_dir", str(tmp_path))], seed=42)).run()
    hosts = [stage["host"] for stage in outcome.manifest["stages"].values()]
    assert hosts and all(h["torch_threads"] == torch.get_num_threads() for h in hosts)

"""Code identity: what a stage key holds of the code that computes the stage."""

from __future__ import annotations

import importlib
import sys
import textwrap

from harness.identity import STAGE_MODULES, code_identity, digest, file_digest, plugin_files


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
        assert digest(code_identity("evaluation", (module.MyTask,))) != before
    finally:
        for name in [n for n in sys.modules if n.startswith("my_task_pkg")]:
            del sys.modules[name]


def test_reports_grids_and_the_cli_are_in_no_stage():
    """Editing what only lays out or schedules results throws no stage away. (The store's training checkpoints
    are training code: a resumed stage's weights come through the optimizer and RNG state they restore.)"""
    for modules in STAGE_MODULES.values():
        assert not any(m.startswith(("harness.reporting", "harness.grid", "harness.cli", "harness.store"))
                       and m != "harness.store.checkpoints" for m in modules)
    assert "harness.store.checkpoints" in STAGE_MODULES["student"]


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

    from harness.config import resolve_config
    from harness.pipeline import Pipeline

    outcome = Pipeline(resolve_config("dart", "seqkd", "ci", 42, [("results_dir", str(tmp_path))])).run()
    hosts = [stage["host"] for stage in outcome.manifest["stages"].values()]
    assert hosts and all(h["torch_threads"] == torch.get_num_threads() for h in hosts)

"""The methods beyond the paper (harness/methods/beyond.py): registered, listed, public-API only,
and run end to end on every registered task on the ``ci`` profile."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from conftest import ci_grid_config
from harness.methods import beyond
from harness.registry import METHODS, TASKS
from harness.testing import make_method

NEW_METHODS = ["wordkd", "gkd", "skl", "srkl", "akl", "js_online", "tvd_online", "js_exact"]


def test_new_methods_are_registered_and_listed():
    from click.testing import CliRunner

    from harness.cli import cli

    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("  ")}
    for name in NEW_METHODS:
        cls = METHODS.get(name)
        assert cls.__module__ == "harness.methods.beyond" and cls.name == name
        sources = ", ".join(make_method(name).prefix_weights())
        assert f"[{sources}]" in lines[name], lines[name]


def test_the_module_uses_only_the_public_plugin_api():
    """beyond.py imports nothing from the harness but Method, register_method/HarnessError and the divergences."""
    tree = ast.parse(Path(beyond.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import: write plugins against the public package paths"
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    harness_names = {name for name in imported if name.startswith("harness")}
    assert harness_names == {"harness.methods.divergences", "harness.methods.base.Method",
                             "harness.register_method", "harness.config.setting"}


@pytest.mark.parametrize("task", TASKS.names())
def test_js_style_methods_take_each_tasks_beta(task):
    beta = TASKS.get(task).method_defaults["js"]["beta"]
    for name in ("js_online", "js_exact"):
        assert make_method(name, task=task).params.beta == beta


# --------------------------------------------------------------------------- every task × every new method
@pytest.mark.slow
@pytest.mark.parametrize("method", NEW_METHODS)
@pytest.mark.parametrize("task", TASKS.names())
def test_every_new_method_runs_on_every_task(ci_grid, task, method):
    """Read from the session's ci grid (every task × every registered method, conftest.py)."""
    root, _ = ci_grid
    folders = sorted(Path(root, "runs").glob(f"{task}-{method}-ci-seed42-*"))
    assert len(folders) == 1, folders
    folder = folders[0]
    cfg = ci_grid_config(task, method)

    metrics = pd.read_parquet(folder / "metrics.parquet")
    assert (metrics["method"] == method).all() and (metrics["task"] == task).all()
    assert {"teacher", "predistill", method} <= set(metrics["model"])
    mine = metrics[metrics["model"] == method].set_index("metric")["value"]
    for name in (*TASKS.get(task).metrics, "r_llh", "r_cvg"):
        assert math.isfinite(mine[name]), (name, mine.get(name))

    # the step losses of every declared prefix source were logged, and they are finite
    curves = pd.read_parquet(folder / "curves.parquet")
    method_curves = curves[curves["stage"] == method]          # the method stage's curves are labelled by the method
    for source in make_method(method, task=task).prefix_weights():
        values = method_curves.loc[method_curves["name"] == f"loss/{source}", "value"]
        assert len(values) >= 1 and values.map(math.isfinite).all(), (source, values.tolist())

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["method"] == method
    assert manifest["config"]["method_params"] == cfg.method_params

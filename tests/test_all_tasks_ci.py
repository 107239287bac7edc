"""Every built-in method on every other task, end to end on the ``ci`` profile (DART: test_run_ci.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.config import resolve_config
from harness.pipeline import Pipeline
from harness.registry import TASKS

BUILTIN_METHODS = ["mle", "predistill", "seqkd", "engine", "kl", "rkl", "js", "tvd"]
OTHER_TASKS = [t for t in ("xsum", "wmt16_en_ro", "commonsense_dialogue") if t in TASKS]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("results")   # one stage cache: each task trains one teacher


@pytest.mark.parametrize("method", BUILTIN_METHODS)
@pytest.mark.parametrize("task", OTHER_TASKS)
def test_method_runs_on_task(root, task, method):
    outcome = Pipeline(resolve_config(task, method, "ci", sets=[("results_dir", str(root))])).run()
    metrics = pd.read_parquet(outcome.path / "metrics.parquet")
    task_cls = TASKS.get(task)
    for model in ("teacher", method):
        got = set(metrics.loc[metrics["model"] == model, "metric"])
        assert set(task_cls.metrics) | {"r_llh", "r_cvg"} <= got, (model, got)
    teacher = metrics[metrics["model"] == "teacher"].set_index("metric")["value"]
    assert 0.0 <= teacher["teacher_dist"] <= 100.0
    assert metrics["value"].notna().all()
    examples = pd.read_parquet(outcome.path / "examples.parquet")
    mine = examples[examples["model"] == method]
    assert len(mine) > 0 and mine["hypothesis"].map(lambda h: isinstance(h, str)).all()
    assert {f"score_{m}" for m in task_cls.metrics} <= set(examples.columns)


def test_architecture_matches_the_model_family():
    from harness.registry import HarnessError

    if "commonsense_dialogue" not in TASKS:
        pytest.skip("dialogue task not registered")
    with pytest.raises(HarnessError, match="decoder-only"):
        Pipeline(resolve_config("commonsense_dialogue", "mle", "ci", sets=[("teacher.family", "t5")]))

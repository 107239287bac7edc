"""Every method on every task, end to end on the ``ci`` profile: read from the session's ci grid (conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.config import resolve_config
from harness.pipeline import Pipeline
from harness.errors import HarnessError
from harness.registry import METHODS, TASKS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", METHODS.names())
@pytest.mark.parametrize("task", TASKS.names())
def test_method_runs_on_task(ci_grid, task, method):
    root, _ = ci_grid
    folders = sorted(Path(root, "runs").glob(f"{task}-{method}-ci-seed42-*"))
    assert len(folders) == 1, folders
    metrics = pd.read_parquet(folders[0] / "metrics.parquet")
    task_cls = TASKS.get(task)
    for model in ("teacher", method):
        got = set(metrics.loc[metrics["model"] == model, "metric"])
        assert set(task_cls.metrics) | {"r_llh", "r_cvg"} <= got, (model, got)
    teacher = metrics[metrics["model"] == "teacher"].set_index("metric")["value"]
    assert 0.0 <= teacher["teacher_dist"] <= 100.0
    assert metrics["value"].notna().all()
    examples = pd.read_parquet(folders[0] / "examples.parquet")
    mine = examples[examples["model"] == method]
    assert len(mine) > 0 and mine["hypothesis"].map(lambda h: isinstance(h, str)).all()
    assert {f"score_{m}" for m in task_cls.metrics} <= set(examples.columns)


def test_architecture_matches_the_model_family():
    with pytest.raises(HarnessError, match="decoder-only"):
        Pipeline(resolve_config("commonsense_dialogue", "mle", "ci", sets=[("teacher.family", "t5")]))
    with pytest.raises(HarnessError, match="encoder-decoder"):
        Pipeline(resolve_config("dart", "mle", "ci", sets=[("teacher.family", "gpt2")]))

"""The acceptance grid: ``harness grid --profile ci`` — every task, every method, two seeds — locally and on Ray."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.results import load_failures, load_metrics, run_folders

pytestmark = pytest.mark.slow


def registered() -> tuple[list[str], list[str]]:
    """Task and method names as a fresh process sees them (tests may register plugins in this one)."""
    code = "from harness.registry import TASKS, METHODS; print(','.join(TASKS.names())); print(','.join(METHODS.names()))"
    tasks, methods = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout.split()
    return tasks.split(","), methods.split(",")


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_the_ci_table2_grid_runs_every_cell(executor, tmp_path):
    if executor == "ray":
        pytest.importorskip("ray")
    tasks, methods = registered()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "grid", "--profile", "ci", "--results-dir",
                           str(tmp_path), "--executor", executor], capture_output=True, text=True)
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    expected = {(t, m, s) for t in tasks for m in methods for s in (42, 43)}
    metrics = load_metrics(tmp_path)
    assert set(zip(metrics["task"], metrics["method"], metrics["seed"])) == expected
    assert len(run_folders(tmp_path)) == len(expected) and load_failures(tmp_path).empty
    assert not metrics.duplicated(["run_id", "model", "metric"]).any()
    # every cell evaluated the teacher; one evaluation per task and upstream seed policy
    teacher = metrics[(metrics["model"] == "teacher") & (metrics["metric"] == "r_llh")]
    assert teacher.groupby("task")["stage_key"].nunique().eq(1).all()

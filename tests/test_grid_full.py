"""The acceptance grid: ``harness grid --profile ci`` — every task, every method (four of DART's at two seeds) — locally and on Ray."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import CI_GRID_SECOND_SEED, CI_GRID_SECOND_SEED_METHODS, CI_GRID_SET_ARGS, fresh_registry

from harness.store.read import load_failures, load_metrics, run_folders

pytestmark = pytest.mark.slow
TIMING = ("seconds", "tokens_per_s")   # wall-clock metrics differ between runs by nature


def check_complete(root) -> None:
    tasks, methods = fresh_registry()
    expected = {(t, m, 42) for t in tasks for m in methods} | {("dart", m, CI_GRID_SECOND_SEED)
                                                                for m in CI_GRID_SECOND_SEED_METHODS}
    metrics = load_metrics(root)
    assert set(zip(metrics["task"], metrics["method"], metrics["seed"])) == expected
    assert len(run_folders(root)) == len(expected) and load_failures(root).empty
    assert not metrics.duplicated(["run_id", "model", "metric"]).any()
    # every cell evaluated the teacher; one evaluation per task and upstream seed policy
    teacher = metrics[(metrics["model"] == "teacher") & (metrics["metric"] == "r_llh")]
    assert teacher.groupby("task")["stage_key"].nunique().eq(1).all()


def comparable(root):
    metrics = load_metrics(root)
    keep = ~metrics["metric"].str.contains("|".join(TIMING))
    return metrics[keep].set_index(["run_id", "model", "metric"])["value"].sort_index()


def test_the_ci_table2_grid_runs_every_cell_locally(ci_grid):
    root, proc = ci_grid
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    check_complete(root)


@pytest.mark.xdist_group("ray")
def test_the_same_grid_on_ray_gives_the_same_rows(ci_grid, tmp_path):
    """Cells as Ray tasks on a local Ray instance: a slice of the ci grid (one task, one seed, a method of each kind
    of prefix source: the executor runs every cell alike). The stage cache of the local run is copied in, so the
    cells reuse its stages: the Ray run must write every run folder again and give the same numbers."""
    pytest.importorskip("ray")
    root, proc = ci_grid
    assert proc.returncode == 0
    shutil.copytree(root / "cache", tmp_path / "cache")
    tasks, methods = ("dart",), ("mle", "seqkd", "kl", "tvd", "engine")   # ground truth, pseudo-labels, teacher
    # samples, student samples with offline teacher outputs, the student's greedy decode
    ray_proc = subprocess.run([sys.executable, "-m", "harness.cli", "grid", "--profile", "ci", *CI_GRID_SET_ARGS,
                               "--results-dir", str(tmp_path), "--executor", "ray", "--tasks", ",".join(tasks),
                               "--methods", ",".join(methods), "--seeds", "42"], capture_output=True, text=True)
    assert ray_proc.returncode == 0, f"{ray_proc.stdout[-4000:]}\n{ray_proc.stderr[-4000:]}"
    metrics = load_metrics(tmp_path)
    assert set(zip(metrics["task"], metrics["method"], metrics["seed"])) == {(t, m, 42) for t in tasks for m in methods}
    assert load_failures(tmp_path).empty
    on_ray = comparable(tmp_path)
    local = comparable(root).loc[on_ray.index.get_level_values("run_id").unique()]
    assert local.index.equals(on_ray.index)
    assert (local - on_ray).abs().max() < 1e-9

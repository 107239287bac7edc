"""``harness grid`` killed with SIGKILL mid-cell, then run again, ends exactly where an uninterrupted run does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.store.read import load_compute, load_curves, load_examples, load_metrics, run_folders
from harness.store.runs import TIMING_METRICS

pytestmark = pytest.mark.slow

# A short ci cell whose teacher and method stages take several checkpointed steps each.
SPEC = """
name = "crash"
tasks = ["dart"]
methods = ["tvd"]
seeds = [42]
[set]
"data.train_size" = 16
"data.validation_size" = 4
"data.test_size" = 4
"teacher_dist_samples" = 0
"teacher_train.max_steps" = 6
"student_train.max_steps" = 2
"kd_train.max_steps" = 6
"checkpoint_every" = 1
"""


def grid(spec: Path, results: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "grid", str(spec), "--profile", "ci",
                             "--results-dir", str(results)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def kill_once(proc: subprocess.Popen, ready, what: str, timeout: float = 900) -> str:
    """SIGKILL the runner (its whole process group) as soon as ``ready()``; returns its stderr."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            assert proc.returncode == -signal.SIGKILL
            return err
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the grid ended before it could be killed {what}:\n{out}\n{err[-3000:]}")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"not {what} within {timeout}s")


def kill_when(proc: subprocess.Popen, results: Path, stage: str, name: str, step: int) -> str:
    """Kill once stage ``stage`` has a checkpoint of training ``name`` at ``step`` or later."""
    def ready() -> bool:
        for progress in (results / "cache" / stage).glob("*.partial/progress.json"):
            try:
                state = json.loads(progress.read_text())
            except (OSError, ValueError):
                continue
            if state["name"] == name and state["step"] >= step:
                return True
        return False

    return kill_once(proc, ready, f"in {stage}/{name} at step {step}")


def kill_while_building(proc: subprocess.Popen, results: Path, stage: str) -> str:
    """Kill while a ``stage`` folder is being written (its temporary folder exists: not yet renamed)."""
    return kill_once(proc, lambda: any(".tmp-" in p.name for p in (results / "cache" / stage).glob(".*")),
                     f"while building {stage}")


def comparable(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows in a fixed order, list-valued cells as tuples (so that frames compare cell by cell)."""
    frame = frame.map(lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)
    return frame.sort_values(keys).reset_index(drop=True)


def test_a_killed_grid_resumes_and_ends_like_an_uninterrupted_one(tmp_path, harness_cli):
    spec = tmp_path / "crash.toml"
    spec.write_text(SPEC)
    killed, clean = tmp_path / "killed", tmp_path / "clean"

    # killed in every training stage, in pipeline order, and while a stage folder is written; then it runs to the end
    kill_when(grid(spec, killed), killed, "teacher", "teacher", 2)
    second = kill_when(grid(spec, killed), killed, "student", "predistill", 1)
    assert "[teacher] resuming from the checkpoint at step" in second
    third = kill_when(grid(spec, killed), killed, "student", "method", 2)
    assert "[predistill] resuming from the checkpoint at step" in third
    fourth = kill_while_building(grid(spec, killed), killed, "evaluation")
    assert "[method] resuming from the checkpoint at step" in fourth
    # the runs to the end in this process: nothing in them is killed (two subprocesses' imports saved)
    resumed = harness_cli("grid", spec, "--profile", "ci", "--results-dir", killed)
    assert resumed.code == 0 and "1 ran now" in resumed.out, resumed.err[-3000:]
    uninterrupted = harness_cli("grid", spec, "--profile", "ci", "--results-dir", clean)
    assert uninterrupted.code == 0, uninterrupted.err[-3000:]

    # the same rows with the same values, once each
    metrics = load_metrics(killed)
    assert not metrics.duplicated(["run_id", "model", "metric"]).any()
    untimed = lambda m: m[~m["metric"].isin(TIMING_METRICS)]  # noqa: E731
    keys = ["run_id", "model", "metric"]
    pd.testing.assert_frame_equal(comparable(untimed(metrics), keys), comparable(untimed(load_metrics(clean)), keys))
    keys = ["run_id", "model", "example_id"]
    pd.testing.assert_frame_equal(comparable(load_examples(killed), keys), comparable(load_examples(clean), keys))
    keys = ["run_id", "stage", "step", "split", "name"]
    pd.testing.assert_frame_equal(comparable(load_curves(killed), keys), comparable(load_curves(clean), keys))
    assert [p.name for p in run_folders(killed)] == [p.name for p in run_folders(clean)]

    # the resumed stages say so; nothing half-written is left behind
    compute = load_compute(killed).set_index("stage")
    assert compute.loc["method", "resumed_from_step"] >= 2 and compute.loc["teacher", "reused"]
    teacher_key = compute.loc["teacher", "stage_key"]
    record = json.loads((killed / "cache" / "teacher" / teacher_key / "stage.json").read_text())
    assert record["resumed_from_step"] >= 2
    leftovers = [p for p in (killed / "cache").glob("*/*") if ".partial" in p.name or ".tmp-" in p.name]
    assert not leftovers and not list((killed / ".tmp").iterdir()) and not (killed / "failed").exists()
    again = harness_cli("grid", spec, "--profile", "ci", "--results-dir", killed)
    assert again.code == 0 and "0 ran now, 1 already done" in again.out

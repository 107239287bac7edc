"""A cpu grid's dry run priced at the stage seconds its results store measured (harness/grid/measured.py)."""

from __future__ import annotations

import json
import re
from statistics import median
from types import SimpleNamespace

import pandas as pd

from conftest import CI_GRID_SET_ARGS, cli_main
from harness.grid.measured import estimate_measured, format_measured, measured_stage_seconds, minutes


def _run(folder, task, method, stages, source="embedded"):
    """A run folder whose compute.parquet holds ``stages``: (stage, key, seconds, steps, resumed_from_step)."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"parameters": {"data.source": source}}))
    pd.DataFrame([{"run_id": folder.name, "task": task, "method": method, "profile": "cpu", "stage": stage,
                   "stage_key": key, "reused": False, "seconds": seconds, "steps": steps,
                   "resumed_from_step": resumed} for stage, key, seconds, steps, resumed in stages]
                 ).to_parquet(folder / "compute.parquet")


def test_measured_seconds_count_each_stage_once_by_its_plan_label_and_whole_schedule(tmp_path):
    nan = float("nan")
    _run(tmp_path / "runs" / "a", "dart", "mle", [("teacher", "t1", 100.0, 400.0, 100.0),   # resumed at 100/400
                                                  ("method", "m1", 10.0, 50.0, nan),
                                                  ("evaluation/mle", "e1", 3.0, nan, nan)])
    _run(tmp_path / "runs" / "b", "dart", "mle", [("teacher", "t1", 100.0, 400.0, 100.0),   # the same stage again
                                                  ("method", "m2", 14.0, 50.0, nan),
                                                  ("predistill", "p1", 5.0, 50.0, 40.0)])     # resumed at 40/50: its
    # 5 s are mostly loading and the last validation, not a fifth of the schedule: it prices nothing
    _run(tmp_path / "runs" / "c", "dart", "kl", [("method", "k1", 40.0, 50.0, nan)])
    _run(tmp_path / "runs" / "r", "dart", "kl", [("method", "k2", 90.0, 50.0, nan)], source="local")   # real text
    (tmp_path / "runs" / "d").mkdir()
    (tmp_path / "runs" / "d" / "compute.parquet").write_text("half-written")              # prices nothing
    measured = measured_stage_seconds(tmp_path)
    e = ("dart", "cpu", "embedded")
    assert measured == {(*e, "teacher"): [100.0 * (400 / 300)], (*e, "mle"): [10.0, 14.0], (*e, "evaluation/mle"): [3.0],
                        (*e, "kl"): [40.0], ("dart", "cpu", "local", "kl"): [90.0]}


def test_a_plan_is_priced_at_the_medians_and_what_was_never_measured_is_counted_apart():
    measured = {("dart", "cpu", "embedded", "teacher"): [400.0], ("dart", "cpu", "embedded", "mle"): [10.0, 14.0, 30.0],
                ("xsum", "cpu", "embedded", "mle"): [7.0], ("xsum", "cpu", "local", "kl"): [1000.0]}

    def plan(task, status, stages):
        config = SimpleNamespace(data=SimpleNamespace(source="embedded"))
        return SimpleNamespace(status=status, cell=SimpleNamespace(task=task, profile="cpu", config=lambda: config),
                               stages=[SimpleNamespace(label=label, state=state,
                                                       progress={"step": 25, "total": 100} if state == "resume" else None)
                                       for label, state in stages])

    plans = [plan("dart", "to run", [("teacher", "build"), ("mle", "build"), ("evaluation/mle", "build")]),
             plan("dart", "to run", [("teacher", "shared"), ("mle", "resume")]),
             plan("dart", "done", [("mle", "build")]),
             plan("xsum", "to run", [("tokenizer", "cached"), ("mle", "build"), ("kl", "build")])]
    cost = estimate_measured(plans, measured)
    # brute force: every stage to build at its measured median, the resumed one (at 25 of 100 steps) at 3/4 of it
    assert cost.seconds == 400.0 + median([10.0, 14.0, 30.0]) * (1 + 0.75) + 7.0
    assert cost.by_task == {"dart": 424.5, "xsum": 7.0} and cost.priced == 4
    # the twin's kl is not priced at what real text's took
    assert cost.unpriced == {"dart: evaluation/mle": 1, "xsum: kl": 1} and cost.measured == 6
    first, second = format_measured(cost)
    assert "process-minutes to build, at this store's measured stage seconds: 7.2 (dart 7.1, xsum 0.1)" in first
    assert format_measured(estimate_measured(plans, {})) == [
        "process-minutes to build: nothing measured in this store yet (6 stages to build; a store with finished runs "
        "of these tasks prices them)"]
    assert "not priced: 2 stages" in second and "dart: evaluation/mle; xsum: kl" in second


def test_the_dry_run_of_a_cpu_grid_prices_its_stages_from_the_store(ci_grid, monkeypatch, capsys):
    root, proc = ci_grid
    assert proc.returncode == 0, proc.stderr
    # the ci grid's DART MLE at a seed it never ran: its method stage and evaluation are to build, priced at what
    # the store measured for DART's ci MLE stages
    result = cli_main(monkeypatch, capsys, ["grid", "table2", "--profile", "ci", *CI_GRID_SET_ARGS, "--tasks", "dart",
                                            "--methods", "mle", "--seeds", "4242", "--results-dir", str(root),
                                            "--dry-run"])
    assert result.code == 0, result.err
    measured = measured_stage_seconds(root)
    expected = (median(measured[("dart", "ci", "embedded", "mle")])
                + median(measured[("dart", "ci", "embedded", "evaluation/mle")]))
    line = next(x for x in result.out.splitlines() if x.startswith("process-minutes to build"))
    assert re.search(r": ([\d,.]+) \(dart", line).group(1) == minutes(expected) == f"{expected / 60:.1f}"
    assert "2 stages priced" in line and "not priced" not in result.out
    assert "wall-clock of the priced stages: 1 process " in result.out


def test_the_wall_clock_of_the_priced_stages_follows_their_dependencies():
    """A teacher (4,000 s) read by two students (600 s, 900 s) and a stage nothing priced: on one process 5,500 s, on
    two the teacher first and then both students at once (4,900 s); the longest chain is the teacher and its slower
    student."""
    from harness.grid.measured import format_measured_wall_clock, measured_graph
    from harness.grid.schedule import wall_clock

    measured = {("dart", "cpu", "embedded", "teacher"): [4000.0], ("dart", "cpu", "embedded", "mle"): [600.0],
                ("dart", "cpu", "embedded", "kl"): [900.0]}
    config = SimpleNamespace(data=SimpleNamespace(source="embedded"))

    def stage(label, key, upstream=None):
        return SimpleNamespace(label=label, state="build", key=key, spec=SimpleNamespace(upstream=upstream or {}))

    plans = [SimpleNamespace(status="to run", cell=SimpleNamespace(task="dart", profile="cpu", config=lambda: config),
                             stages=[stage("teacher", "t"), stage(method, key, {"teacher": "t"}),
                                     stage(f"evaluation/{method}", f"e{key}", {"student": key})])
             for method, key in (("mle", "m"), ("kl", "k"))]
    nodes = measured_graph(plans, measured)
    assert {k: round(n.hours * 3600, 6) for k, n in nodes.items()} == {"t": 4000.0, "m": 600.0, "em": 0.0,
                                                                        "k": 900.0, "ek": 0.0}
    assert round(wall_clock(nodes, 1).scheduled * 3600, 6) == 5500.0
    assert round(wall_clock(nodes, 2).scheduled * 3600, 6) == 4900.0
    assert round(wall_clock(nodes, 2).chain * 3600, 6) == 4900.0
    (line,) = format_measured_wall_clock(nodes, (1, 2, 2))
    assert line.startswith("wall-clock of the priced stages: 1 process 1.5 h, 2 processes 1.4 h (longest chain "
                           "1.4 h; no schedule beats it), if each stage takes what it took here")

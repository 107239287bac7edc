"""Settings chosen on validation, never on test (``harness grid --select-on validation``): a hand-written store of
run folders (manifest, curves, metrics as :func:`harness.store.runs.write_run` lays them out), no training."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import HarnessError
from harness.reporting.selection import format_selection, select_on_validation, validation_score

SweptCell = namedtuple("SweptCell", "run_id task method seed axes")
TASK = {"name": "dart", "metrics": ["bleu", "ter"], "lower_is_better": ["ter"], "selection_metric": "bleu"}


def write_run(root: Path, run_id: str, method: str, seed: int, checks: list[tuple[int, float]], best_step: int,
              test: dict[str, float], task: dict = TASK, sign: float = 1.0) -> None:
    """One run folder: its method stage's validation checks (step, score on the metric's scale), the step it kept."""
    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    stages = {"method": {"stage": "student", "key": run_id, "info": {"best_step": best_step, "steps": checks[-1][0]}}}
    (folder / "manifest.json").write_text(json.dumps(
        {"run_id": run_id, "task": task, "method": {"name": method, "params": {}}, "stages": stages}))
    curves = [{"step": s, "epoch": s / 10, "split": "validation", "name": "selection", "value": sign * v,
               "stage": method, "run_id": run_id} for s, v in checks]
    curves += [{"step": s, "epoch": s / 10, "split": "train", "name": "loss", "value": 1.0, "stage": method,
                "run_id": run_id} for s, _ in checks]
    # the teacher's curve in the same run must not be read as the method's
    curves.append({"step": best_step, "epoch": 1.0, "split": "validation", "name": "selection", "value": 99.0,
                   "stage": "teacher", "run_id": run_id})
    pd.DataFrame(curves).to_parquet(folder / "curves.parquet", index=False)
    rows = [{"run_id": run_id, "model": model, "split": "test", "metric": m, "value": v + (50 if model == "teacher" else 0)}
            for model in (method, "teacher") for m, v in test.items()]
    pd.DataFrame(rows).to_parquet(folder / "metrics.parquet", index=False)


def sweep(root: Path) -> list[SweptCell]:
    """T = 1 is best on validation (mean 34.5 over two seeds), T = 2 best on test."""
    cells = []
    for t, seed, val, test in ((1, 42, 34.0, 30.0), (1, 43, 35.0, 31.0), (2, 42, 33.0, 40.0), (2, 43, 34.0, 41.0)):
        run_id = f"dart-predistill-T{t}-{seed}"
        write_run(root, run_id, "predistill", seed, [(5, val - 1), (10, val)], 10, {"bleu": test, "ter": 80.0 + t})
        cells.append(SweptCell(run_id, "dart", "predistill", seed, (("method.temperature", t),)))
    return cells


def test_chooses_on_validation_and_shows_test_of_the_chosen_only(tmp_path):
    [s] = select_on_validation(sweep(tmp_path), tmp_path)
    assert dict(s.chosen.setting) == {"method.temperature": 1}      # test would pick 2
    assert s.chosen.validation == pytest.approx(34.5)
    assert [c.validation for c in s.candidates] == pytest.approx([34.5, 33.5])
    text = format_selection([s])
    assert "method.temperature=1: 34.50 (n=2)  ← chosen" in text
    assert "bleu 30.50 ± 0.71" in text and "ter 81.00 ± 0.00" in text
    assert "40.50" not in text and "41.00" not in text     # T = 2's test scores are not shown
    record = s.as_record()
    assert record["chosen"] == {"method.temperature": 1} and record["selected_on"] == "validation"
    assert record["test"]["bleu"] == [30.0, 31.0]


def test_the_score_of_the_kept_weights_not_the_best_check(tmp_path):
    """Without select_best a stage keeps its last weights: their score is the last check's, not the best one's."""
    write_run(tmp_path, "last", "mle", 42, [(5, 36.0), (10, 33.0)], 10, {"bleu": 30.0})
    write_run(tmp_path, "best", "mle", 42, [(5, 36.0), (10, 33.0)], 5, {"bleu": 30.0})
    assert validation_score(tmp_path / "runs" / "last") == 33.0
    assert validation_score(tmp_path / "runs" / "best") == 36.0


def test_a_lower_is_better_selection_metric(tmp_path):
    """The curve holds −TER (higher is better); the choice is the lowest TER, shown on its own scale."""
    task = {**TASK, "selection_metric": "ter"}
    cells = []
    for v, run_id in ((70.0, "a"), (65.0, "b"), (75.0, "c")):
        write_run(tmp_path, run_id, "mle", 42, [(10, v)], 10, {"bleu": 1.0, "ter": v}, task=task, sign=-1.0)
        cells.append(SweptCell(run_id, "dart", "mle", 42, (("student.encoder_layers", run_id),)))
    [s] = select_on_validation(cells, tmp_path)
    assert dict(s.chosen.setting) == {"student.encoder_layers": "b"} and s.chosen.validation == 65.0
    assert "validation ter (lower is better)" in format_selection([s])


def test_missing_runs_and_runs_without_validation(tmp_path):
    cells = sweep(tmp_path)[:2] + [SweptCell("never-ran", "dart", "predistill", 42, (("method.temperature", 2),))]
    [s] = select_on_validation(cells, tmp_path)
    assert dict(s.chosen.setting) == {"method.temperature": 1}
    assert s.candidates[1].missing == ("never-ran",) and "1 cell(s) not run" in format_selection([s])
    write_run(tmp_path, "no-checks", "mle", 42, [(10, 1.0)], 7, {"bleu": 1.0})   # no check at the kept step
    [s] = select_on_validation([SweptCell("no-checks", "dart", "mle", 42, (("x", 1),))], tmp_path)
    assert s.chosen is None and "no run recorded a validation score" in format_selection([s])


@pytest.mark.parametrize("args, message", [
    ([], "sweeps nothing to choose from"),
    (["--axis", "student.encoder_layers=1,2", "--set", "student_train.evals_per_epoch=0",
      "--set", "student_train.select_best=false"], "trains without validation checks"),
])
def test_select_on_needs_a_sweep_and_validation(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["grid", "table2", "--profile", "ci", "--tasks", "dart", "--methods", "mle",
                                      "--seeds", "42", "--results-dir", str(tmp_path / "r"), "--select-on",
                                      "validation", "--dry-run", *args])
    # before any work: the CLI's main() prints it as one line `harness: error: ...` and exits 2
    assert isinstance(result.exception, HarnessError) and result.exception.exit_code == 2, result.output
    assert message in str(result.exception)
    assert not (tmp_path / "r").exists()


def test_real_runs_validation_scores(ci_grid):
    """On the session's ci grid (no training of its own): a run's validation score is what its method stage kept
    (``best_validation`` with select_best), and two runs posing as two values of a setting are chosen between by it."""
    root, _ = ci_grid
    runs = sorted((root / "runs").glob("dart-mle-ci-seed*"))
    assert len(runs) >= 2
    cells, kept = [], {}
    for i, folder in enumerate(runs[:2]):
        manifest = json.loads((folder / "manifest.json").read_text())
        kept[i] = manifest["stages"]["method"]["info"]["best_validation"]
        assert validation_score(folder) == pytest.approx(kept[i])
        cells.append(SweptCell(folder.name, "dart", "mle", manifest["seed"], (("posing_as", i),)))
    [s] = select_on_validation(cells, root)
    assert dict(s.chosen.setting)["posing_as"] == max(kept, key=kept.get)


def test_grid_select_on_prints_the_choice_and_records_it(tmp_path, monkeypatch):
    """The CLI path after the cells ran (here: hand-written runs for the grid's own cells, nothing trained): the
    choice printed with the chosen value's test scores only, and kept in the grid record."""
    import harness.grid as grid
    from harness.grid.runner import GridReport, write_grid_record

    def ran(cells, name, profile, **_):
        for cell in cells:
            lr = dict(cell.axes)["student_train.lr"]
            val, test = (36.0, 20.0) if lr == "0.001" else (35.0, 44.0)   # the second: better on test only
            write_run(Path(cell.results_dir), cell.run_id, cell.method, cell.seed, [(4, val)], 4,
                      {"bleu": test + cell.seed - 42, "ter": 70.0})
        report = GridReport(name, profile, cells, {}, 0.0)
        report.record = write_grid_record(report)
        return report

    monkeypatch.setattr(grid, "run_grid", ran)
    result = CliRunner().invoke(cli, ["grid", "table2", "--profile", "ci", "--tasks", "dart", "--methods", "mle",
                                      "--seeds", "42,43", "--axis", "student_train.lr=0.001,0.002",
                                      "--results-dir", str(tmp_path), "--select-on", "validation"])
    assert result.exit_code == 0, result.output
    assert "student_train.lr=0.001: 36.00 (n=2)  ← chosen" in result.output
    assert "bleu 20.50 ± 0.71" in result.output and "44.50" not in result.output
    [record] = (tmp_path / "grids").glob("*.json")
    [choice] = json.loads(record.read_text())["selection"]
    assert choice["chosen"] == {"student_train.lr": "0.001"} and choice["test"]["bleu"] == [20.0, 21.0]

"""``harness report`` on the session's ci grid (every task × every method; DART at 2 seeds): the cross-task tables.

The per-task tables are checked on a DART grid in test_report.py; here the tables that need
several tasks, against numbers computed straight from the runs' parquet files.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.paper import TASKS as PAPER_TASK_ORDER
from harness.reporting.build import build_report

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report_grid")]   # its fixtures built once, on one worker


@pytest.fixture(scope="module")
def grid_report(ci_grid, tmp_path_factory):
    root, _ = ci_grid
    out = tmp_path_factory.mktemp("grid-report")
    build_report(root, out, baseline=None, n_samples=100, figures=False)   # the tables, not the bootstrap or plots
    return root, out


def parquet(root: Path, name: str) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(Path(root, "runs").glob(f"*/{name}"))], ignore_index=True)


def test_overview_sets_every_task_side_by_side_with_the_parquet_means(grid_report):
    root, out = grid_report
    table = pd.read_csv(out / "tables" / "overview_ci.csv")
    metrics = parquet(root, "metrics.parquet").drop_duplicates(["stage_key", "metric"])
    assert metrics["variant"].nunique(dropna=False) == 1     # one setting (the grid's --set): every row at it
    assert list(table["task"].drop_duplicates()) == list(PAPER_TASK_ORDER)
    assert len(table) > 100
    for row in table.itertuples():
        # the same numbers as the task's own Table 2 (itself checked against parquet in test_report.py)
        own = pd.read_csv(out / "tables" / f"table2_{row.task}_ci.csv")
        same = own[(own["row"] == row.row) & (own["metric"] == row.metric)]["mean"]
        assert list(same) == [pytest.approx(row.mean)], row
        if row.task != "commonsense_dialogue":   # deterministic decoding: every evaluation of a model agrees
            values = metrics[(metrics["task"] == row.task) & (metrics["model"] == row.model)
                             & (metrics["metric"] == row.metric)]["value"]
            assert row.mean == pytest.approx(values.mean()), row
    md = (out / "tables" / "overview_ci.md").read_text()
    assert md.splitlines()[2].startswith("| model | dart BLEU | dart chrF | dart TER↓ | dart BLEU (official) | xsum R1 |")


def test_grid_stage_times_count_each_stage_once(grid_report):
    root, out = grid_report
    table = pd.read_csv(out / "tables" / "stages_all_ci.csv").set_index("stage")
    builds = parquet(root, "compute.parquet").drop_duplicates(["task", "stage_name", "stage_key"])
    assert table["seconds"].sum() == pytest.approx(builds["seconds"].sum())
    assert table.loc["teacher", "builds"] == 4 and table.loc["tokenizer", "builds"] == 4


def test_report_sections_follow_the_papers_task_order(grid_report):
    _, out = grid_report
    headings = [line[3:] for line in (out / "report.md").read_text().splitlines() if line.startswith("## ")]
    assert headings == (["The paper's findings, re-tested — ci profile", "all tasks — ci profile",
                         "The twins against the paper's regime — ci profile", "Where the variance comes from — ci profile"]
                        + [f"{task} — ci profile" for task in PAPER_TASK_ORDER])

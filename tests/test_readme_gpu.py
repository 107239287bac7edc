"""The README's hours for Table 2 on GPUs are the dry run's: ``harness grid table2 --profile paper --dry-run``
prices and schedules the same stages (:mod:`harness.grid.cost`, :mod:`harness.grid.schedule`), so a change to
the code or the recipes that moves them fails here instead of leaving the README stale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"<!-- table2-hours:.*?-->\n(.*?)<!-- /table2-hours -->", re.S)


def readme_block() -> str:
    found = BLOCK.findall(README.read_text())
    assert len(found) == 1, "README.md: one <!-- table2-hours --> block expected"
    return found[0]


def readme_rows(block: str) -> list[tuple[int, int, str]]:
    """(P, k, hours as printed) of each setup row of the block's table."""
    rows = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].isdigit():
            rows.append((int(cells[1]), int(cells[2]), cells[3]))
    return rows


@pytest.fixture(scope="module")
def table2_paper(tmp_path_factory):
    """The dry run's plans, stage costs and stage graph of Table 2 under the paper profile (nothing cached)."""
    from harness.grid import expand, load_spec, plan_grid
    from harness.grid.cost import estimate_grid
    from harness.grid.schedule import stage_graph

    cells = expand(load_spec("table2").for_profile("paper"), str(tmp_path_factory.mktemp("results")))
    plans = plan_grid(cells)
    costs = estimate_grid(plans)
    return plans, costs, stage_graph(plans, costs)


def test_the_readme_block_is_read():
    rows = readme_rows(readme_block())
    assert len(rows) >= 4 and {p for p, _, _ in rows} >= {1, 8, 32} and {k for _, k, _ in rows} >= {1, 8}


@pytest.mark.clean_registry
def test_the_readme_hours_are_the_dry_runs(table2_paper):
    from harness.grid.schedule import wall_clock

    plans, costs, nodes = table2_paper
    block = readme_block()
    for gpus, per_cell, shown in readme_rows(block):
        assert shown == f"{wall_clock(nodes, gpus, gpus_per_stage=per_cell).scheduled:,.1f}", (gpus, per_cell)
    by_task: dict[str, float] = {}
    for plan in plans:
        if plan.number in costs:
            by_task[plan.cell.task] = by_task.get(plan.cell.task, 0.0) + costs[plan.number].hours
    assert f"GPU-hours in total: {sum(by_task.values()):,.1f} (XSum alone {by_task['xsum']:,.1f})" in block

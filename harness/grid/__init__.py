"""Grids of cells (task × method × seed × swept parameters): specs, safe execution, executors.

    from harness.grid import load_spec, expand, run_grid
    spec = load_spec("table2").for_profile("ci")
    report = run_grid(expand(spec, "results"), spec.name, spec.profile)

See :mod:`harness.grid.spec` for the spec format, :mod:`harness.grid.cells` for what
makes a cell safe to kill and rerun, :mod:`harness.grid.executors` for where cells run.
"""

from .cells import CellOutcome, run_cell
from .runner import GridReport, format_plan, plan_grid, run_grid
from .spec import SHIPPED, Cell, GridSpec, expand, load_spec, with_overrides

__all__ = ["SHIPPED", "Cell", "CellOutcome", "GridReport", "GridSpec", "expand", "format_plan", "load_spec",
           "plan_grid", "run_cell", "run_grid", "with_overrides"]

"""One cell of the benchmark as a chain of cached stages: :mod:`.graph` plans it (no data, no model),
:mod:`.load` draws the data, :mod:`.stages` builds each stage from its keyed config and its upstream
stages' outputs, :mod:`.run` walks the plan and writes the run."""

from .graph import CellPlan, StageSpec, plan_cell, plan_for
from .run import Pipeline

__all__ = ["CellPlan", "Pipeline", "StageSpec", "plan_cell", "plan_for"]

"""Running a grid: plan it (``--dry-run``), run what is missing, record and summarise.

A rerun of the same command after a crash finds finished cells by their run id
(a hash of the resolved config) and skips them; stages shared between cells come
from the stage cache; a stage killed while training goes on from its checkpoint.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..store.io import sweep_stale, write_json
from ..errors import DiskFullError
from ..store.runs import TMP, failure_path, is_complete
from .cells import CellOutcome, done_problem
from .executors import make_executor
from .spec import Cell, interleave_tasks

GRIDS = "grids"


# ---------------------------------------------------------------- planning (--dry-run)

@dataclass
class StagePlan:
    label: str            # as the run names it: tokenizer, teacher, predistill, <method>, evaluation/<model>
    stage: str
    key: str
    state: str            # cached | shared | build | resume
    cell: int | None = None       # shared: the grid cell (1-based) that builds it first
    progress: dict | None = None  # resume: {"name", "step", "total"} of its training checkpoint
    spec: object = field(default=None, repr=False, compare=False)   # its StageSpec (what a cost estimate prices)


@dataclass
class CellPlan:
    number: int
    cell: Cell
    status: str                   # done | to run
    failed_before: str = ""       # the error of a recorded failure
    redo: str = ""                # why a run folder that exists is made again (corrupted, stale)
    stages: list[StagePlan] = field(default_factory=list)


def plan_grid(cells: list[Cell]) -> list[CellPlan]:
    """Per cell: done or to run and, for those to run, each stage's key and whether it is cached,
    built by an earlier cell of this grid, resumed from a checkpoint, or built from scratch.

    Only each cell's plan (:func:`harness.pipeline.graph.plan_for`) and the cache are read: no data
    is loaded, nothing is tokenised, no model is loaded."""
    import json

    from ..store.checkpoints import read_progress
    from ..pipeline.graph import plan_for
    from ..store.cache import StageCache

    builder: dict[tuple[str, str], int] = {}
    plans = []
    for number, cell in enumerate(cells, 1):
        problem = done_problem(cell)
        if problem is None:
            plans.append(CellPlan(number, cell, "done"))
            continue
        record = failure_path(cell.results_dir, cell.run_id)
        failed = ""
        if record.is_file():
            failure = json.loads(record.read_text())
            failed = f"{failure.get('error_type')}: {str(failure.get('error', '')).splitlines()[0][:200]}"
        cache = StageCache(Path(cell.results_dir) / "cache")
        stages = []
        for spec in plan_for(cell.config()).specs:
            at = (spec.stage, spec.key)
            if cache.probe(spec.stage, spec.config, spec.upstream, spec.code).reused:
                stages.append(StagePlan(spec.shown, spec.stage, spec.key, "cached", spec=spec))
            elif at in builder:
                stages.append(StagePlan(spec.shown, spec.stage, spec.key, "shared", builder[at], spec=spec))
            else:
                builder[at] = number
                progress = read_progress(cache.partial_path(spec.stage, spec.key))
                stages.append(StagePlan(spec.shown, spec.stage, spec.key, "resume" if progress else "build",
                                        progress=progress, spec=spec))
        plans.append(CellPlan(number, cell, "to run", failed, redo="" if problem == "is missing" else problem,
                              stages=stages))
    return plans


def format_plan(plans: list[CellPlan], name: str, profile: str, costs: dict | None = None) -> str:
    """The dry run's text; ``costs`` (:func:`harness.grid.cost.estimate_grid`) adds GPU-hours per cell and in total,
    the wall-clock on 1, 8 and 32 GPUs (:mod:`.schedule`) and the peak memory per process (:mod:`.memory`)."""
    from .cost import format_cell_cost, format_costs
    from .memory import format_grid_memory, grid_memory
    from .schedule import format_wall_clock, stage_graph

    todo = [p for p in plans if p.status == "to run"]
    lines = [f"grid {name} (profile {profile}): {len(plans)} cells, {len(plans) - len(todo)} done, "
             f"{len(todo)} to run; results in {plans[0].cell.results_dir if plans else '-'}"]
    width = max((len(p.cell.run_id) for p in plans), default=0)
    for p in plans:
        lines.append(f"{p.number:>4}  {p.cell.run_id:<{width}}  {p.status}"
                     + (f"  (failed before: {p.failed_before})" if p.failed_before else "")
                     + (f"  (its run folder {p.redo})" if p.redo else ""))
        if p.status == "done":
            continue
        reuse = [s.label + (f" (cell {s.cell})" if s.state == "shared" else "") for s in p.stages
                 if s.state in ("cached", "shared")]
        build = [s.label + (f" (resumes at step {s.progress['step']}/{s.progress['total']})"
                            if s.state == "resume" else "") for s in p.stages if s.state in ("build", "resume")]
        lines.append(f"{'':>6}reuse  {', '.join(reuse) or '-'}")
        lines.append(f"{'':>6}build  {', '.join(build) or '-'}")
        if costs is not None and p.number in costs:
            lines.append(f"{'':>6}{format_cell_cost(costs[p.number])}")
    counts: dict[str, int] = {}
    for p in todo:
        for s in p.stages:
            if s.state in ("build", "resume"):
                counts[s.stage] = counts.get(s.stage, 0) + 1
    served = sum(s.state in ("cached", "shared") for p in todo for s in p.stages)
    lines.append(f"stage builds: {', '.join(f'{n} {stage}' for stage, n in counts.items()) or 'none'}; "
                 f"stage uses served by the cache or an earlier cell: {served}")
    if costs is not None:
        lines += format_costs(plans, costs)
        lines += format_wall_clock(stage_graph(plans, costs))
        lines += format_grid_memory(grid_memory(plans))
    return "\n".join(lines)


# ---------------------------------------------------------------- running

@dataclass
class GridReport:
    name: str
    profile: str
    cells: list[Cell]
    outcomes: dict[str, CellOutcome]
    seconds: float
    record: Path | None = None

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes.values())

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes.values() if o.status in ("failed", "busy")]

    def summary(self) -> str:
        lines = [f"grid {self.name} (profile {self.profile}): {len(self.cells)} cells: {self.count('ran')} ran now, "
                 f"{self.count('done')} already done, {len(self.failed)} failed ({self.seconds:.0f}s)"]
        if self.failed:
            lines.append(f"failed cells ({len(self.failed)}):")
            for o in self.failed:
                error = o.error or "still held by another runner"
                lines.append(f"  {o.run_id}: {error}" + (f"  [{o.record}]" if o.record else ""))
        if self.record is not None:
            lines.append(f"grid record: {self.record}")
        return "\n".join(lines)


def run_grid(cells: list[Cell], name: str, profile: str, *, executor: str = "local", workers: int = 1,
             address: str | None = None, cpus: float = 1, gpus: float = 0, threads: int | None = None,
             echo: Callable[[str], None] = print) -> GridReport:
    """Run every cell that is not done yet; return what happened to each."""
    if not cells:
        return GridReport(name, profile, [], {}, 0.0)
    results_dir = Path(cells[0].results_dir)
    _sweep(results_dir)
    parallel = executor == "ray" or workers > 1
    order = interleave_tasks(cells) if parallel else list(cells)
    outcomes: dict[str, CellOutcome] = {}
    number = {c.run_id: i for i, c in enumerate(cells, 1)}
    start = time.time()

    def report(cell: Cell, outcome: CellOutcome) -> None:
        outcomes[cell.run_id] = outcome
        detail = ""
        if outcome.status == "ran":
            detail = f"{outcome.seconds:.1f}s  built: {', '.join(outcome.built) or '-'}"
            if outcome.resumed:
                detail += f"  (resumed: {', '.join(outcome.resumed)})"
        elif outcome.status == "failed":
            detail = outcome.error
        echo(f"[{len(outcomes):>{len(str(len(cells)))}}/{len(cells)}] {outcome.status:<6} "
             f"#{number[cell.run_id]} {cell.run_id}  {detail}".rstrip())
        if outcome.fatal:
            raise DiskFullError(outcome.fatal)

    runner = make_executor(executor, workers, address, cpus, gpus, threads)
    try:
        runner.run(order, report)
    finally:
        runner.close()
        grid = GridReport(name, profile, cells, outcomes, time.time() - start)
        try:
            grid.record = write_grid_record(grid)
        except DiskFullError:   # the grid is stopping for this very reason; its error says so
            pass
    return grid


def _sweep(results_dir: Path) -> None:
    """Remove what writers killed on this host left half-written (temporary folders of dead processes)."""
    removed = sweep_stale(results_dir / TMP)
    cache = results_dir / "cache"
    if cache.is_dir():
        for stage in cache.iterdir():
            if stage.is_dir():
                removed += sweep_stale(stage)
    if removed:
        print(f"[grid] removed {len(removed)} temporary folder(s) left by killed processes", file=sys.stderr)


def record_selection(record: Path, selections: list) -> None:
    """Add ``--select-on``'s choice (:class:`harness.reporting.selection.Selection` each) to the grid record."""
    import json

    data = json.loads(record.read_text())
    data["selection"] = [s.as_record() for s in selections]
    write_json(record, data)


def write_grid_record(grid: GridReport) -> Path:
    """``results/grids/<name>-<profile>-<digest>.json``: this grid's cells (the digest is of their run ids)."""
    digest = hashlib.sha256(",".join(sorted(c.run_id for c in grid.cells)).encode()).hexdigest()[:8]
    path = Path(grid.cells[0].results_dir) / GRIDS / f"{grid.name}-{grid.profile}-{digest}.json"
    cells = []
    for cell in grid.cells:
        outcome = grid.outcomes.get(cell.run_id)
        cells.append({"run_id": cell.run_id, "task": cell.task, "method": cell.method, "seed": cell.seed,
                      "axes": {k: v for k, v in cell.axes}, "status": outcome.status if outcome else "not run",
                      "seconds": round(outcome.seconds, 3) if outcome else None,
                      "error": outcome.error if outcome else "", "worker": outcome.worker if outcome else ""})
    write_json(path, {"name": grid.name, "profile": grid.profile, "command": sys.argv,
                      "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(grid.seconds, 3),
                      "cells": cells})
    return path

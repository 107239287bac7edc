"""What a grid costs on this machine: its dry run's stages priced at the stage seconds this results store measured.

:mod:`.cost` prices a ``paper`` grid in GPU-FLOPs; a ``cpu`` or ``ci`` grid is better priced by what its stages
took here. Every run folder's ``compute.parquet`` holds, per stage, the seconds its build took (the stage record's,
the same in every run that reused it). A stage to build is priced at the median of the measured stages of the same
task, profile, data source (a twin's stages do not price its released text's) and label (``teacher``,
``pseudo_labels``, ``predistill``, a method's name, ``evaluation/<model>``), whatever their axis values; a stage with no such measurement is counted apart, not guessed.

A training stage resumed from a checkpoint recorded only the seconds since the resume: resumed in its first half, it
is scaled to its whole schedule (``steps / (steps − resumed_from_step)``); later, its fixed costs (loading, the last
validation) would be scaled with it, so it prices nothing. A stage the plan resumes is priced at the share of its
steps still to run. The seconds are wall-clock seconds of the threads and machine
load they were built under (the grid's ``--threads``): an estimate for the same conditions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from statistics import median


@dataclass(frozen=True)
class MeasuredCost:
    seconds: float                    # the priced stages' seconds in all
    by_task: dict[str, float]         # the same per task ("task (SOURCE data)" on released data)
    priced: int                       # stages priced
    unpriced: dict[str, int]          # "task: label" -> stages to build with no measurement
    measured: int                     # distinct stages measured in the store


Key = tuple[str, str, str, str]   # task, profile, data.source, the stage's label as a dry run shows it


def measured_stage_seconds(results_dir: str | Path) -> dict[Key, list[float]]:
    """(task, profile, data source, shown label) -> the build seconds of each distinct stage (by key) the store
    measured."""
    import json

    import pandas as pd

    frames = []
    for path in sorted(Path(results_dir, "runs").glob("*/compute.parquet")):
        try:
            frame = pd.read_parquet(path, columns=["task", "profile", "method", "stage", "stage_key", "seconds",
                                                   "steps", "resumed_from_step"])
            manifest = json.loads((path.parent / "manifest.json").read_text())
        except Exception:   # a run folder being written, or one from older code: it prices nothing
            continue
        frames.append(frame.assign(source=str((manifest.get("parameters") or {}).get("data.source", "embedded"))))
    if not frames:
        return {}
    rows = pd.concat(frames, ignore_index=True).dropna(subset=["seconds"]).drop_duplicates("stage_key")
    out: dict[Key, list[float]] = {}
    for row in rows.itertuples(index=False):
        seconds = float(row.seconds)
        steps, resumed = row.steps, row.resumed_from_step
        if resumed is not None and math.isfinite(resumed) and resumed > 0:
            if steps is None or not math.isfinite(steps) or resumed > steps / 2:
                continue
            seconds *= steps / (steps - resumed)
        label = row.method if row.stage == "method" else row.stage   # the plan shows a method stage by its name
        out.setdefault((row.task, row.profile, row.source, label), []).append(seconds)
    return out


def _share(stage) -> float:
    """The share of a stage's work still to do: all of it, or what a resumed stage has left."""
    progress = getattr(stage, "progress", None) if stage.state == "resume" else None
    if progress and progress.get("total"):
        return max(0.0, 1.0 - progress["step"] / progress["total"])
    return 1.0


def _priced(plans, measured: dict[Key, list[float]]):
    """Each stage a dry run would build or resume (:func:`.runner.plan_grid`): (plan, stage, the task as shown, its
    seconds at the measured median — a resumed one's share left — or None where nothing of its kind was measured)."""
    medians = {k: median(v) for k, v in measured.items()}
    for plan in plans:
        if plan.status != "to run":
            continue
        source = plan.cell.config().data.source
        task = plan.cell.task + ("" if source == "embedded" else f" ({source} data)")
        for stage in plan.stages:
            if stage.state in ("build", "resume"):
                value = medians.get((plan.cell.task, plan.cell.profile, source, stage.label))
                yield plan, stage, task, None if value is None else value * _share(stage)


def estimate_measured(plans, measured: dict[Key, list[float]]) -> MeasuredCost:
    """Price every stage a dry run would build or resume at its measured median."""
    total, by_task, priced, unpriced = 0.0, {}, 0, {}
    for _, stage, task, seconds in _priced(plans, measured):
        if seconds is None:
            name = f"{task}: {stage.label}"
            unpriced[name] = unpriced.get(name, 0) + 1
        else:
            total += seconds
            by_task[task] = by_task.get(task, 0.0) + seconds
            priced += 1
    return MeasuredCost(total, by_task, priced, unpriced, sum(len(v) for v in measured.values()))


def measured_graph(plans, measured: dict[Key, list[float]]) -> dict:
    """The stages to build as :mod:`.schedule`'s dependency graph, weighted by their measured medians in hours (a stage
    nothing priced weighs 0: the wall-clock below is that of the priced stages)."""
    from .schedule import Node

    nodes: dict[str, Node] = {}
    for plan, stage, _, seconds in _priced(plans, measured):
        needs = set((stage.spec.upstream or {}).values()) if stage.spec is not None else set()
        nodes[stage.key] = Node(f"{plan.cell.task}/{stage.label}", (seconds or 0.0) / 3600, needs)
    for node in nodes.values():
        node.needs &= nodes.keys()
    return nodes


def format_measured_wall_clock(nodes: dict, processes: tuple[int, ...]) -> list[str]:
    """One line: hours until the priced stages are built on each number of worker processes (greedy schedule,
    longest chain first, as the grid's workers take cells), and the longest chain."""
    from .schedule import wall_clock

    if not nodes or not any(n.hours for n in nodes.values()):
        return []

    def duration(hours: float) -> str:
        return f"{hours:,.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"

    rows = [wall_clock(nodes, p) for p in sorted(set(processes))]
    shown = ", ".join(f"{r.workers} process{'es' if r.workers > 1 else ''} {duration(r.scheduled)}" for r in rows)
    return [f"wall-clock of the priced stages: {shown} (longest chain {duration(rows[0].chain)}; no schedule beats "
            "it), if each stage takes what it took here (on a machine with fewer cores than processes, longer)"]


def minutes(seconds: float) -> str:
    """Seconds as minutes, to the minute (a tenth below ten minutes)."""
    return f"{seconds / 60:,.0f}" if seconds >= 600 else f"{seconds / 60:.1f}"


def format_measured(cost: MeasuredCost) -> list[str]:
    """The dry run's closing lines for a grid priced on this machine."""
    if not cost.priced and not cost.unpriced:
        return []
    if not cost.measured:
        return [f"process-minutes to build: nothing measured in this store yet ({sum(cost.unpriced.values())} "
                "stages to build; a store with finished runs of these tasks prices them)"]
    tasks = ", ".join(f"{task} {minutes(s)}" for task, s in cost.by_task.items())
    lines = [f"process-minutes to build, at this store's measured stage seconds: {minutes(cost.seconds)}"
             + (f" ({tasks})" if tasks else "") + f"; {cost.priced} stages priced (median of the {cost.measured} "
             "stages measured here, per task, profile, data source and stage; as loaded and threaded as they were)"]
    if cost.unpriced:
        by_task: dict[str, list[str]] = {}
        for name in sorted(cost.unpriced):
            task, label = name.split(": ", 1)
            by_task.setdefault(task, []).append(label)
        shown = "; ".join(f"{task}: {', '.join(labels)}" for task, labels in by_task.items())
        lines.append(f"not priced: {sum(cost.unpriced.values())} stages, no stage of their task and kind measured "
                     f"here ({shown})")
    return lines

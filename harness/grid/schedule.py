"""Wall-clock of a grid on P GPUs: its stages as a dependency graph, scheduled one stage per GPU.

The nodes are the stages a dry run would build (a stage shared by cells once), weighted by their
GPU-hours from :mod:`.cost`; an edge runs from each stage to those that read it (teacher →
pseudo-labels → pre-distilled student → KD student → evaluations, per task and seed; the edges are
the stage specs' ``upstream`` keys of :mod:`harness.pipeline.graph`). A cached stage costs nothing
and is done.

Two numbers per P:

* the **bound**: max(longest chain, total / P) — no schedule on P GPUs can be faster;
* the **schedule**: greedy list scheduling, each free GPU taking the ready stage with the longest
  chain still behind it (Graham: at most total / P + longest chain). This is what the grid's
  executors can reach when cells are spread over P workers, a cell waiting for a stage another
  builds.

``gpus_per_stage`` (k) models data-parallel stages: a stage runs on k GPUs at once in
hours / (k · efficiency), and P GPUs hold P // k stages. The grid runs one GPU per cell today
(k = 1, efficiency 1: exact); for k > 1 the efficiency is an assumption to state (0.9 is typical of
DDP over NVLink for models of this size).

:mod:`.measured` schedules a CPU grid's stages, priced in measured seconds, on P worker processes with the same
graph (a "GPU" is then a process).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass
class Node:
    """One stage to build."""

    label: str                    # task/label, as the chain is printed
    hours: float
    needs: set[str] = field(default_factory=set)   # keys of the stages it reads that are still to build


@dataclass(frozen=True)
class WallClock:
    workers: int                  # P: GPUs (a paper grid's cost) or worker processes (:mod:`.measured`'s CPU grid)
    total: float                  # GPU-hours of all stages
    chain: float                  # the longest dependency chain, hours
    spread: float                 # total / P (over the P // k stage slots, at k GPUs each)
    bound: float                  # max(chain, spread)
    scheduled: float              # the greedy schedule's makespan, hours
    path: tuple[str, ...] = ()    # the longest chain's stages


def stage_graph(plans, costs) -> dict[str, Node]:
    """key → the stage to build, from a dry run's plans (:func:`.runner.plan_grid`) and their
    costs (:func:`.cost.estimate_grid`); cells whose cost is not known are left out."""
    nodes: dict[str, Node] = {}
    for plan in plans:
        cost = costs.get(plan.number)
        if plan.status != "to run" or cost is None or cost.unknown:
            continue
        for stage in plan.stages:
            if stage.state in ("build", "resume"):
                nodes[stage.key] = Node(f"{plan.cell.task}/{stage.label}", cost.stages.get(stage.label, 0.0),
                                        set((stage.spec.upstream or {}).values()) if stage.spec is not None else set())
    for node in nodes.values():
        node.needs &= nodes.keys()    # data, and stages cached or not estimated, are no wait
    return nodes


def _tails(nodes: dict[str, Node], scale: float) -> dict[str, float]:
    """Per stage: its hours plus the longest chain of stages that read it (what still follows once it starts)."""
    readers: dict[str, list[str]] = {key: [] for key in nodes}
    for key, node in nodes.items():
        for need in node.needs:
            readers[need].append(key)
    tails: dict[str, float] = {}

    def tail(key: str) -> float:
        if key not in tails:
            tails[key] = nodes[key].hours * scale + max((tail(r) for r in readers[key]), default=0.0)
        return tails[key]

    for key in nodes:
        tail(key)
    return tails


def wall_clock(nodes: dict[str, Node], gpus: int, gpus_per_stage: int = 1, efficiency: float = 1.0) -> WallClock:
    """Hours until every stage of ``nodes`` is built on ``gpus`` GPUs (see the module docstring)."""
    if gpus < 1 or gpus_per_stage < 1 or gpus_per_stage > gpus or not 0 < efficiency <= 1:
        raise ValueError(f"gpus={gpus}, gpus_per_stage={gpus_per_stage}, efficiency={efficiency}: need "
                         f"1 ≤ gpus_per_stage ≤ gpus and 0 < efficiency ≤ 1")
    scale = 1.0 / (gpus_per_stage * efficiency)
    slots = gpus // gpus_per_stage
    tails = _tails(nodes, scale)
    total = sum(n.hours for n in nodes.values())
    chain = max(tails.values(), default=0.0)
    # the longest chain, for the reader: from its first stage, always the reader with the longest tail
    path, key = [], max(tails, key=tails.get, default=None)
    readers = {k: [r for r, n in nodes.items() if k in n.needs] for k in nodes}
    while key is not None:
        path.append(f"{nodes[key].label} {nodes[key].hours * scale:,.1f} h")
        key = max(readers[key], key=tails.get, default=None)
    # greedy list scheduling: events are (finish time, key); ready stages by longest tail first
    waiting = {key: set(node.needs) for key, node in nodes.items()}
    ready = [(-tails[k], k) for k, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now, done = 0.0, 0
    while done < len(nodes):
        while ready and len(running) < slots:
            _, key = heapq.heappop(ready)
            heapq.heappush(running, (now + nodes[key].hours * scale, key))
        now, key = heapq.heappop(running)
        done += 1
        for reader in readers[key]:
            waiting[reader].discard(key)
            if not waiting[reader]:
                heapq.heappush(ready, (-tails[reader], reader))
    spread = total * scale / slots
    return WallClock(gpus, total, chain, spread, max(chain, spread), now, tuple(path))


def format_wall_clock(nodes: dict[str, Node], gpus: tuple[int, ...] = (1, 8, 32), gpus_per_stage: int = 1,
                      efficiency: float = 1.0) -> list[str]:
    """The dry run's wall-clock table and the longest chain."""
    rows = [wall_clock(nodes, p, gpus_per_stage, efficiency) for p in gpus]
    lines = [f"wall-clock on P GPUs ({gpus_per_stage} GPU per stage"
             + (f", {efficiency:.0%} data-parallel efficiency" if gpus_per_stage > 1 else "")
             + "; hours at the GPU-hours' throughput):",
             f"{'P':>6} {'GPU-hours':>10} {'longest chain':>14} {'total/P':>8} {'bound':>8} {'scheduled':>10}"]
    for r in rows:
        lines.append(f"{r.workers:>6} {r.total:>10,.1f} {r.chain:>14,.1f} {r.spread:>8,.1f} "
                     f"{r.bound:>8,.1f} {r.scheduled:>10,.1f}")
    if rows and rows[0].path:
        lines.append(f"longest chain: {' → '.join(rows[0].path)}")
    lines.append("bound: max(longest chain, total/P), no schedule is faster; scheduled: greedy, longest chain first "
                 "(one stage per GPU; a stage shared by cells built once)")
    return lines

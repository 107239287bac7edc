"""Settings chosen on validation, never on test.

A grid that sweeps a setting (its axes) trains one model per value. Choosing the value by its test score
and then reporting that test score reports the maximum of noisy estimates: an optimistic number, on the
very inputs that should judge it. :func:`select_on_validation` picks instead, per task and method, the
combination of swept values whose models have the best mean **validation** score over the grid's seeds,
and :func:`format_selection` shows test numbers for the chosen values only.

A run's validation score is the one its own training stage recorded for the weights it kept
(:func:`validation_score`): the selection metric of the task (``selection_metric``; the same decode that
checkpoint selection uses) on the validation split at the stage's ``best_step`` — the best check with
``select_best``, the last one without it. Scores are compared on the metric's own scale, higher or lower
being better as the task declares. Ties go to the first value in the grid's order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol

import numpy as np
import pandas as pd

from ..store.labels import METHOD
from ..store.read import read_manifest
from ..store.runs import RUNS

VALIDATION = "validation"
#: the curve name under which a training stage records its checkpoint-selection score (higher is better)
SELECTION_CURVE = "selection"


class SweptRun(Protocol):
    """What selection reads of a grid cell (:class:`harness.grid.spec.Cell` is one)."""

    run_id: str
    task: str
    method: str
    seed: int
    axes: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class RunScores:
    run_id: str
    seed: int
    validation: float | None        # the selection metric on validation, on its own scale (None: not recorded)
    test: dict[str, float]          # the run's own model's test metrics


@dataclass(frozen=True)
class Candidate:
    """One combination of the swept values and its runs (one per seed that finished)."""

    setting: tuple[tuple[str, Any], ...]
    runs: tuple[RunScores, ...]
    missing: tuple[str, ...] = ()   # run ids of its cells with no complete run

    @property
    def scores(self) -> list[float]:
        return [r.validation for r in self.runs if r.validation is not None]

    @property
    def validation(self) -> float:
        """The mean validation score over its seeds (NaN: none recorded)."""
        return float(np.mean(self.scores)) if self.scores else math.nan

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.setting)


@dataclass(frozen=True)
class Selection:
    task: str
    method: str
    metric: str                     # the selection metric
    higher_is_better: bool
    candidates: tuple[Candidate, ...]
    chosen: Candidate | None        # None: no candidate has a validation score
    test_metrics: tuple[str, ...] = field(default=())

    def as_record(self) -> dict:
        """What the grid record keeps: every candidate's validation scores, the chosen setting and its test means."""
        chosen = self.chosen
        return {"task": self.task, "method": self.method, "selected_on": VALIDATION, "metric": self.metric,
                "higher_is_better": self.higher_is_better,
                "candidates": [{"setting": dict(c.setting), "validation": c.scores,
                                "validation_mean": None if math.isnan(c.validation) else c.validation,
                                "run_ids": [r.run_id for r in c.runs], "missing": list(c.missing)}
                               for c in self.candidates],
                "chosen": dict(chosen.setting) if chosen else None,
                "test": ({m: [r.test[m] for r in chosen.runs if m in r.test] for m in self.test_metrics}
                         if chosen else {})}


def validation_score(run_folder: Path, manifest: dict | None = None) -> float | None:
    """The validation score (selection metric, its own scale) of the weights the run's own training stage kept:
    its recorded checkpoint-selection curve at the stage's ``best_step``; None when the stage recorded none."""
    manifest = manifest or read_manifest(run_folder)
    info = (manifest.get("stages", {}).get(METHOD) or {}).get("info") or {}
    step = info.get("best_step")
    curves_file = run_folder / "curves.parquet"
    if step is None or not curves_file.is_file():
        return None
    curves = pd.read_parquet(curves_file)
    if not len(curves):
        return None
    rows = curves[(curves["stage"] == manifest["method"]["name"]) & (curves["split"] == VALIDATION)
                  & (curves["name"] == SELECTION_CURVE) & (curves["step"] == step)]
    if not len(rows):
        return None
    oriented = float(rows["value"].iloc[-1])   # recorded so that higher is better
    return oriented if _higher_is_better(manifest) else -oriented


def _higher_is_better(manifest: dict) -> bool:
    return manifest["task"].get("selection_metric") not in set(manifest["task"].get("lower_is_better") or ())


def _test_metrics(run_folder: Path, manifest: dict) -> dict[str, float]:
    metrics = pd.read_parquet(run_folder / "metrics.parquet")
    own = metrics[(metrics["model"] == manifest["method"]["name"]) & (metrics["split"] == "test")]
    wanted = manifest["task"].get("metrics") or sorted(own["metric"].unique())
    values = dict(zip(own["metric"], own["value"].astype(float)))
    return {m: values[m] for m in wanted if m in values}


def select_on_validation(runs: Iterable[SweptRun], results_dir: str | Path) -> list[Selection]:
    """Per (task, method) of ``runs`` (a grid's cells, in the grid's order): the candidates — each combination of
    its swept values (``axes``) with the runs of its seeds — and the one with the best mean validation score.
    Cells without a complete run are listed as missing; the test scores are read for every run but a report
    shows the chosen candidate's only (:func:`format_selection`)."""
    root = Path(results_dir)
    groups: dict[tuple[str, str], dict[tuple, list[SweptRun]]] = {}
    for run in runs:
        groups.setdefault((run.task, run.method), {}).setdefault(tuple(run.axes), []).append(run)
    out = []
    for (task, method), by_setting in groups.items():
        candidates, metric, higher, test_metrics = [], "", True, ()
        for setting, cells in by_setting.items():
            scores, missing = [], []
            for cell in cells:
                folder = root / RUNS / cell.run_id
                if not (folder / "manifest.json").is_file():
                    missing.append(cell.run_id)
                    continue
                manifest = read_manifest(folder)
                metric, higher = manifest["task"].get("selection_metric") or "", _higher_is_better(manifest)
                test_metrics = tuple(manifest["task"].get("metrics") or ())
                scores.append(RunScores(cell.run_id, cell.seed, validation_score(folder, manifest),
                                        _test_metrics(folder, manifest)))
            candidates.append(Candidate(setting, tuple(scores), tuple(missing)))
        scored = [c for c in candidates if c.scores]
        chosen = None
        if scored:
            sign = 1.0 if higher else -1.0
            chosen = max(scored, key=lambda c: sign * c.validation)   # max keeps the first of equal ones
        out.append(Selection(task, method, metric, higher, tuple(candidates), chosen,
                             test_metrics or tuple(sorted({m for c in candidates for r in c.runs for m in r.test}))))
    return out


def _spread(values: list[float]) -> str:
    if not values:
        return "—"
    mean = float(np.mean(values))
    return f"{mean:.2f} ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else f"{mean:.2f}"


def format_selection(selections: list[Selection]) -> str:
    """The selection as text: per task and method, each candidate's mean validation score (n seeds), which was
    chosen, and the test scores of the chosen setting only (mean ± standard deviation over its seeds)."""
    lines = ["settings selected on validation, never on test (the selection metric on the validation split, of the "
             "weights each run kept; mean over seeds):"]
    for s in selections:
        direction = "higher" if s.higher_is_better else "lower"
        lines.append(f"  {s.task} · {s.method}: validation {s.metric} ({direction} is better)")
        for c in s.candidates:
            mark = "  ← chosen" if c is s.chosen else ""
            n = len(c.scores)
            value = f"{c.validation:.2f} (n={n})" if n else "no validation score"
            gone = f", {len(c.missing)} cell(s) not run" if c.missing else ""
            lines.append(f"    {c.label()}: {value}{gone}{mark}")
        if s.chosen is None:
            lines.append("    nothing to choose: no run recorded a validation score")
            continue
        tested = [r.test for r in s.chosen.runs]
        parts = [f"{m} {_spread([t[m] for t in tested if m in t])}" for m in s.test_metrics]
        lines.append(f"    test of the chosen setting only ({s.chosen.label()}; n={len(tested)}): " + ", ".join(parts))
    return "\n".join(lines)

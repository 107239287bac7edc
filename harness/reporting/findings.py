"""The paper's findings, re-tested: per claim and task, what the store measured and a verdict.

One function per claim of Wen et al. (2023) (:mod:`harness.paper.claims`: what each claims and names), each
returning :class:`Finding` rows; :func:`findings` lists them in :data:`CLAIMS` order as one table. A claim compares a statistic with a threshold:

* a difference of two rows' means over seeds (signed so that a positive value favours the claim, by the
  metric's direction in the store), with Welch's 95% t-interval (Welch–Satterthwaite degrees of freedom,
  rounded down). The teacher, one model evaluated once and shared by every seed, counts as a fixed value:
  against a student the interval is the student's one-sample t-interval; two teachers are compared as
  measured (no interval over teacher seeds exists).
* *holds*: the interval lies above the threshold; *does not hold*: below it; *undecided*: it includes the
  threshold, or a row has one seed (no interval), and the row says which.

Rows of a task are taken at one setting on one data set: :func:`~harness.reporting.summary.common_rows` (each
model's row on the task's primary data set that agrees with MLE's row with the most seeds on every axis both name,
the one with the most seeds), so that no finding compares rows made on different data.
Only claims the store has data for appear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..paper import KD_METHODS, TASKS, claims, order_key
from ..paper.published import published
from ..store.labels import PREDISTILL, TEACHER
from . import ranking
from .compare import comparison
from .load import Store, TaskInfo
from .render import Cell, Table
from .stats import t_quantile_975
from .summary import MLE, agrees, common_rows, lookup, row_label, rows_of
from .tables import metric_label, size_axes

HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "undecided"


@dataclass(frozen=True)
class Finding:
    claim: str          # the claim's number ("1", "3a", …)
    statement: str      # what the paper claims, for this row
    task: str
    metric: str
    evidence: str       # the measured values, in words
    estimate: float     # the statistic compared with the threshold (NaN: none)
    low: float          # its 95% interval (NaN: none)
    high: float
    threshold: float
    verdict: str        # HOLDS, FAILS or UNDECIDED
    reason: str


@dataclass(frozen=True)
class Difference:
    estimate: float
    low: float = math.nan
    high: float = math.nan
    exact: bool = False  # two fixed values (teachers): compared as measured
    missing: str = ""    # why there is no interval


# --------------------------------------------------------------------------- statistics
def _fixed(line: dict) -> bool:
    """A teacher evaluated once: one model shared by every seed, a fixed value here."""
    return line["model"] == TEACHER and line["n"] == 1


def difference(a: dict, b: dict) -> Difference:
    """Mean of ``a`` − mean of ``b`` (two summary lines) with Welch's 95% t-interval over their seeds."""
    va, vb = np.asarray(a["values"], float), np.asarray(b["values"], float)
    estimate = float(va.mean() - vb.mean())
    sides = [(v, line) for v, line in ((va, a), (vb, b)) if not _fixed(line)]
    if not sides:
        return Difference(estimate, exact=True)
    for v, line in sides:
        if len(v) < 2:
            return Difference(estimate, missing=f"{line['label']}: one seed, no interval")
    parts = [(float(v.var(ddof=1)) / len(v), len(v) - 1) for v, _ in sides]
    se2 = sum(p for p, _ in parts)
    if se2 == 0:
        return Difference(estimate, estimate, estimate)
    df = se2 ** 2 / sum(p ** 2 / d for p, d in parts if p > 0)
    half = t_quantile_975(max(1, int(df))) * math.sqrt(se2)
    return Difference(estimate, estimate - half, estimate + half)


def better(a: dict, b: dict, lower_is_better: bool) -> Difference:
    """How much ``a`` is better than ``b``: a − b, or b − a for a lower-is-better metric."""
    return difference(b, a) if lower_is_better else difference(a, b)


def judge(d: Difference, threshold: float) -> tuple[str, str]:
    """(verdict, reason) for "the statistic exceeds ``threshold``"."""
    t = f"{threshold:g}"
    if d.exact:
        how = "one teacher per task: compared as measured"
        if d.estimate == threshold:
            return UNDECIDED, f"{how}, equal to {t}"
        return (HOLDS, f"{how}, above {t}") if d.estimate > threshold else (FAILS, f"{how}, below {t}")
    if not math.isfinite(d.low):
        return UNDECIDED, d.missing or "no interval"
    if d.low > threshold:
        return HOLDS, f"interval above {t}"
    if d.high < threshold:
        return FAILS, f"interval below {t}"
    return UNDECIDED, f"interval includes {t}"


def combine(parts: list[tuple[str, str]]) -> tuple[str, str]:
    """One verdict for a claim that needs every part to hold: any part that fails fails it."""
    for verdict in (FAILS, UNDECIDED):
        reasons = [reason for v, reason in parts if v == verdict]
        if reasons:
            return verdict, "; ".join(dict.fromkeys(reasons))
    return HOLDS, "every part holds"


def _num(x: float, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    digits = 2 if abs(x) >= 0.05 or x == 0 else 3
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _interval(d: Difference, missing: str = "—") -> str:
    return f"[{_num(d.low)}, {_num(d.high)}]" if math.isfinite(d.low) else missing


def _ci(line: dict) -> str:
    low, high = line["mean"] - line["ci"], line["mean"] + line["ci"]
    return f"[{_num(low)}, {_num(high)}]" if math.isfinite(line["ci"]) else "(no CI)"


def _said(line: dict) -> str:
    return f"{line['model']} {_num(line['mean'])} (n={line['n']})"


# --------------------------------------------------------------------------- the store, task by task
@dataclass
class View:
    """One task of one profile: its metrics, its summary lines and the row each model is read from."""

    task: str
    profile: str
    info: TaskInfo
    look: dict                  # (row label, metric) → summary line
    rows: dict[str, str]        # model → the label of its row at the common setting

    def line(self, model: str, metric: str) -> dict | None:
        return self.look.get((self.rows.get(model), metric))

    def label(self, metric: str) -> str:
        return metric_label(metric, self.info.lower_is_better)

    def lower(self, metric: str) -> bool:
        return metric in self.info.lower_is_better


@dataclass
class Context:
    store: Store
    summary: pd.DataFrame
    profile: str
    views: dict[str, View]      # task → view, in the paper's task order
    n_samples: int
    paper: pd.DataFrame


def _finding(claim, statement, view_or_task, metric, evidence, d: Difference, threshold: float) -> Finding:
    verdict, reason = judge(d, threshold)
    task = view_or_task.task if isinstance(view_or_task, View) else view_or_task
    return Finding(claim, statement, task, metric, evidence, d.estimate, d.low, d.high, threshold, verdict, reason)


def _versus(claim: str, view: View, model: str, baseline: str, metric: str, threshold: float = 0.0,
            statement: str | None = None) -> Finding | None:
    """``model`` ≥ ``baseline`` (+ threshold) on ``metric``, or None if either row lacks it."""
    a, b = view.line(model, metric), view.line(baseline, metric)
    if a is None or b is None:
        return None
    d = better(a, b, view.lower(metric))
    arrow = "≤" if view.lower(metric) else "≥"
    plus = f" {'−' if view.lower(metric) else '+'} {threshold:g}" if threshold else ""
    statement = statement or f"{model} {arrow} {baseline}{plus} ({view.label(metric)})"
    return _finding(claim, statement, view, metric, f"{_said(a)} vs {_said(b)}", d, threshold)


# --------------------------------------------------------------------------- the claims
def pre_distillation(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.PREDISTILL_VS_MLE`."""
    rows = [_versus(claims.PREDISTILL_VS_MLE.number, v, PREDISTILL, MLE, v.info.primary) for v in ctx.views.values()]
    return [r for r in rows if r]


def kd_methods(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.KD_VS_MLE`."""
    rows = [_versus(claims.KD_VS_MLE.number, v, m, MLE, v.info.primary) for v in ctx.views.values() for m in KD_METHODS]
    return [r for r in rows if r]


def teacher_dist_order(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.TEACHER_DIST_RISES`: one row per neighbouring pair of the tasks present, then
    the whole order."""
    metric, number, order = "teacher_dist", claims.TEACHER_DIST_RISES.number, claims.TEACHER_DIST_ORDER
    lines = {t: ctx.views[t].line(TEACHER, metric) for t in order if t in ctx.views}
    lines = {t: line for t, line in lines.items() if line is not None}
    present = list(lines)
    if len(present) < 2:
        return []
    rows = []
    for low, high in zip(present, present[1:]):
        d = difference(lines[high], lines[low])
        rows.append(_finding(number, f"TeacherDist {low} < {high}", f"{low}, {high}", metric,
                             f"{_num(lines[low]['mean'])} < {_num(lines[high]['mean'])}", d, 0.0))
    verdict, reason = combine([(r.verdict, r.reason) for r in rows])
    missing = [t for t in order if t not in lines]
    if missing and verdict == HOLDS:
        verdict, reason = UNDECIDED, f"no TeacherDist for {', '.join(missing)}"
    measured = " < ".join(f"{t} {_num(lines[t]['mean'])}" for t in present)
    rows.append(Finding(number, "TeacherDist: " + " < ".join(order), "all tasks", metric, measured,
                        math.nan, math.nan, math.nan, 0.0, verdict, reason))
    return rows


def dialogue_teacher(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.DIALOGUE_TEACHER_LEAD`."""
    view = ctx.views.get(claims.DIALOGUE_TASK)
    row = view and _versus(claims.DIALOGUE_TEACHER_LEAD.number, view, TEACHER, MLE, claims.DIALOGUE_METRIC,
                           claims.DIALOGUE_MARGIN)
    return [row] if row else []


def coverage_risk(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.KL_COVERAGE`."""
    lower, higher = claims.LOWER_COVERAGE_RISK, claims.HIGHER_COVERAGE_RISK
    rows = [_versus(claims.KL_COVERAGE.number, v, lower, higher, "r_cvg", statement=f"{lower}'s R_cvg below {higher}'s")
            for v in ctx.views.values()]
    return [r for r in rows if r]


def near_best(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.SYMMETRIC_NEAR_BEST`: within = their t-intervals over seeds overlap the best
    KD method's (by mean primary metric, :func:`~harness.reporting.ranking.best`; on a tie the first in the paper's
    order); the best itself holds."""
    rows = []
    for view in ctx.views.values():
        metric = view.info.primary
        kd = {m: view.line(m, metric) for m in KD_METHODS if view.line(m, metric) is not None}
        if not kd:
            continue
        sign = -1 if view.lower(metric) else 1
        best = next(m for m in kd if m in ranking.best({m: line["mean"] for m, line in kd.items()}, sign < 0))
        for m in claims.NEAR_BEST:
            if m not in kd:
                continue
            line, top = kd[m], kd[best]
            d = Difference(sign * (line["mean"] - top["mean"]))
            evidence = f"{_said(line)} {_ci(line)} vs best {_said(top)} {_ci(top)}"
            if m == best:
                verdict, reason = HOLDS, "it is the best KD method"
            elif _overlap(line, top) is None:
                verdict, reason = UNDECIDED, "one seed, no interval"
            elif _overlap(line, top):
                verdict, reason = HOLDS, "intervals overlap"
            else:
                verdict, reason = FAILS, "intervals do not overlap"
            statement = f"{m} within the best KD method's 95% CI ({view.label(metric)})"
            rows.append(Finding(claims.SYMMETRIC_NEAR_BEST.number, statement, view.task, metric, evidence,
                                d.estimate, math.nan, math.nan, math.nan, verdict, reason))
    return rows


def kendall_agreement(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.KD_ORDER`: τ and its bootstrap interval as the paper comparison computes
    them."""
    rows = []
    for view in ctx.views.values():
        pair = comparison(ctx.store, ctx.summary, view.task, ctx.profile, ctx.paper, ctx.n_samples)
        data = pair[1].data if pair else pd.DataFrame()
        if data.empty:
            continue
        primary = data[data["primary"]]
        if primary.empty:
            continue
        r = primary.iloc[0]
        tau = float(r["kendall_tau"])
        if not math.isfinite(tau):
            d = Difference(tau, missing="τ undefined (a constant order)")
        else:
            d = Difference(tau, float(r["kendall_tau_ci_low"]), float(r["kendall_tau_ci_high"]),
                           missing="no interval: the metric cannot be recomputed from the examples")
        evidence = f"{r['n_methods']} methods; paper {r['paper_order']}; ours {r['our_order']}"
        statement = f"KD order agrees with the paper's (Kendall τ, {view.label(r['our_metric'])})"
        rows.append(_finding(claims.KD_ORDER.number, statement, view, r["our_metric"], evidence, d, 0.0))
    return rows


def _depth_series(ctx: Context, view: View) -> dict[tuple[str, str], tuple[dict, dict]]:
    """(model, its series' label) → (the other setting, depth → line) for each of the paper's KD methods with
    ≥ 2 depths on the primary data set (Figure 2's bars; labelled as Figure 2's table labels them)."""
    series: dict[tuple[str, str], tuple[dict, dict]] = {}
    metric = view.info.primary
    for label, model, setting in rows_of(ctx.summary, view.task, ctx.profile):
        depth, line = setting.get(claims.DEPTH_AXIS), view.look.get((label, metric))
        if depth is None or line is None or model not in KD_METHODS or not line["primary"]:
            continue
        other = {a: v for a, v in setting.items() if a != claims.DEPTH_AXIS}
        name = row_label(model, {a: v for a, v in line["shown"].items() if a != claims.DEPTH_AXIS})
        series.setdefault((model, name), (other, {}))[1][depth] = line
    return {k: v for k, v in series.items() if len(v[1]) > 1}


def _depth_views(ctx: Context):
    """(view, its depth series, its primary metric) of each task whose store varies the encoder depth."""
    for view in ctx.views.values():
        if claims.DEPTH_AXIS in size_axes(ctx.summary, view.task, ctx.profile):
            yield view, _depth_series(ctx, view), view.info.primary


def depth_trend(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.DEPTH_TREND`."""
    rows = []
    for view, series, metric in _depth_views(ctx):
        for (model, name), (other, by_depth) in series.items():
            depths = sorted(by_depth)
            steps = [(a, b, better(by_depth[b], by_depth[a], view.lower(metric))) for a, b in zip(depths, depths[1:])]
            verdict, reason = combine([judge(d, 0.0) for _, _, d in steps])
            evidence = "; ".join(f"{a:g}→{b:g}: {_num(d.estimate, True)} {_interval(d, '(no interval)')}"
                                 for a, b, d in steps)
            statement = f"{name}: {view.label(metric)} rises with encoder depth"
            rows.append(Finding(claims.DEPTH_TREND.number, statement, view.task, metric, evidence, math.nan, math.nan,
                                math.nan, 0.0, verdict, reason))
    return rows


def ahead_of_seqkd(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.AHEAD_OF_SEQKD` (interval overlap noted)."""
    rows = []
    for view, series, metric in _depth_views(ctx):
        seqkd = [(other, by_depth) for (model, _), (other, by_depth) in series.items() if model == claims.SEQKD]
        for (model, name), (other, by_depth) in series.items():
            if model not in claims.F_DISTILL:
                continue
            base = next((b for o, b in seqkd if agrees(o, other)), None)
            depths = sorted(set(by_depth) & set(base or {}))
            if not depths:
                continue
            parts, words = [], []
            for depth in depths:
                mine, theirs = by_depth[depth], base[depth]
                d = better(mine, theirs, view.lower(metric))
                parts.append(judge(d, 0.0))
                overlap = _overlap(mine, theirs)
                words.append(f"{depth:g}: {_num(d.estimate, True)} {_interval(d, '(no interval)')}"
                             + ("" if overlap is None else " (CIs overlap)" if overlap else " (CIs apart)"))
            verdict, reason = combine(parts)
            statement = f"{name} ahead of {claims.SEQKD} at every encoder depth"
            rows.append(Finding(claims.AHEAD_OF_SEQKD.number, statement, view.task, metric, "; ".join(words),
                                math.nan, math.nan, math.nan, 0.0, verdict, reason))
    return rows


def _overlap(a: dict, b: dict) -> bool | None:
    if not (math.isfinite(a["ci"]) and math.isfinite(b["ci"])):
        return None
    return a["mean"] - a["ci"] <= b["mean"] + b["ci"] and b["mean"] - b["ci"] <= a["mean"] + a["ci"]


CLAIMS: tuple[Callable[[Context], list[Finding]], ...] = (
    pre_distillation, kd_methods, teacher_dist_order, dialogue_teacher, coverage_risk, near_best,
    kendall_agreement, depth_trend, ahead_of_seqkd)


# --------------------------------------------------------------------------- the table
def findings(store: Store, summary: pd.DataFrame, profile: str, n_samples: int = 1000,
             paper: pd.DataFrame | None = None) -> Table | None:
    """Every claim's rows for the tasks of ``profile``, as one table (None when no claim has data)."""
    tasks = sorted(set(summary.loc[summary["profile"] == profile, "task"]), key=lambda t: order_key(t, TASKS))
    views = {t: View(t, profile, store.task_info(t, profile), lookup(summary, t, profile),
                     common_rows(summary, t, profile)) for t in tasks}
    ctx = Context(store, summary, profile, views, n_samples, published() if paper is None else paper)
    found = [row for claim in CLAIMS for row in claim(ctx)]
    if not found:
        return None
    rows = [[Cell(text=f.claim), Cell(text=f.statement), Cell(text=f.task), Cell(text=f.evidence),
             Cell(text=_num(f.estimate, True)), Cell(text=_interval(Difference(f.estimate, f.low, f.high))),
             Cell(text=f.verdict), Cell(text=f.reason)] for f in found]
    data = pd.DataFrame([{"claim": f.claim, "statement": f.statement, "task": f.task, "profile": profile,
                          "metric": f.metric, "evidence": f.evidence, "estimate": f.estimate, "ci_low": f.low,
                          "ci_high": f.high, "threshold": f.threshold, "verdict": f.verdict, "reason": f.reason}
                         for f in found])
    caption = ("Δ: the statistic the claim is judged on, signed so that a positive value favours the claim (the "
               "metric's direction as the store records it): a difference of means over seeds, or Kendall τ. "
               "95% interval: Welch's t-interval over seeds (Welch–Satterthwaite degrees of freedom rounded "
               "down); the teacher, one model shared by every seed, counts as a fixed value (two teachers are "
               "compared as measured); τ's interval is the 2.5–97.5 percentiles over the two-level bootstrap "
               "(seeds, then test inputs) of the rank-agreement table. holds: the interval lies above the "
               "threshold; does not hold: below it; undecided: it includes the threshold, or a row has one seed "
               "(no interval). 5: within = the method's t-interval over seeds overlaps the best KD method's "
               "(best: the highest mean primary metric among " + ", ".join(KD_METHODS) + "; Δ: the method's "
               "distance from it). 6b, 6c (Figure 2, "
               "when the student's encoder depth varies): every step, every depth must hold. Rows of a task are "
               "those at the setting of MLE's row with the most seeds, on the task's primary data set.")
    return Table(f"findings_{profile}", f"The paper's findings, re-tested ({profile} profile)",
                 ["#", "claim", "task", "evidence", "Δ", "95% interval", "verdict", "why"], rows, caption, data)

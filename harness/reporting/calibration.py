"""How close each embedded twin is to the regime the paper studied: a teacher worth distilling and something left
to teach (``harness grid calibration``, then ``harness report``: ``tables/calibration_<profile>``).

Per twin (a task of the paper's Table 2 on its embedded data), on the task's primary metric ``y`` (higher is
better; for a lower-is-better metric the sign is flipped so that a positive gap means the teacher is better):

* the gap ``G = y_teacher − y_MLE`` (the MLE row's mean over seeds) with its 95% interval from the noise model
  (:func:`~harness.reporting.noise.difference`: the teacher is one shared model, so its seed part is 0; the
  MLE student's seeds and the test inputs give the rest), and ``G / y_teacher``, the relative gap, with the same
  interval divided by ``y_teacher``, beside the paper's ``(y_teacher − y_MLE) / y_teacher`` (its Table 2);
* the pre-distilled student's token TVD to the teacher (the mean over its test output tokens of
  ½Σ|p − q|) and the acceptance α = 1 − TVD, mean ± 95% CI over its seeds;
* the teacher's TeacherDist (distinct word bigrams % over its samples per test input) beside the paper's (Table 3):
  one teacher per twin, so no interval.

The bounds each twin is checked against (issue "Embedded twins in the paper's regime"):

* :data:`GAP_RATIO`: the relative gap within ½× to 2× the paper's;
* :data:`MIN_TOKEN_TVD`: the pre-distilled student's token TVD at least 0.15 (the KD stage has something to teach);
* TeacherDist in the paper's order of the twins (:func:`teacher_dist_order`: WMT < DART < XSum < dialogue), the
  twins' values spanning at least :data:`MIN_TEACHER_DIST_SPAN` points;
* the teacher above MLE: the gap's 95% interval above 0, with at least
  :data:`~harness.reporting.noise.MIN_OWN_SEEDS` MLE seeds (fewer: exploratory, not decided).
"""

from __future__ import annotations

import math

import pandas as pd

from ..paper import TASKS, order_key
from ..paper.published import published
from ..store.labels import TEACHER
from .load import Store
from .noise import HOLDS, MIN_OWN_SEEDS, PooledSeedVariance, at_least, difference
from .render import Cell, Table
from .stability import replicates
from .summary import common_rows, lookup
from .tables import metric_label

#: The relative teacher − MLE gap may be this many times the paper's, at least and at most.
GAP_RATIO = (0.5, 2.0)
#: The pre-distilled student's token TVD to the teacher must be at least this.
MIN_TOKEN_TVD = 0.15
#: max − min of the twins' TeacherDist, at least (the paper's spans 23.1–81.2).
MIN_TEACHER_DIST_SPAN = 40.0

IN, OUT, UNKNOWN = "✓", "✗", "—"
PREDISTILL, MLE = "predistill", "mle"


def _mark(ok: bool | None) -> str:
    return UNKNOWN if ok is None else (IN if ok else OUT)


def paper_values(task: str, metric: str) -> dict[str, float]:
    """The paper's teacher and MLE ``metric`` (Table 2) and teacher_dist (Table 3) of ``task``, those it has."""
    paper = published()
    rows = paper[(paper["task"] == task) & (paper["setting"] == "")]
    out = {}
    for table, model, name, key in (("table2", TEACHER, metric, "teacher"), ("table2", MLE, metric, "mle"),
                                    ("table3", TEACHER, "teacher_dist", "teacher_dist")):
        hit = rows[(rows["table"] == table) & (rows["model"] == model) & (rows["metric"] == name)]
        if len(hit):
            out[key] = float(hit["value"].iloc[0])
    return out


def teacher_dist_order() -> tuple[str, ...]:
    """The paper's twins in increasing TeacherDist (its Table 3): wmt16_en_ro, dart, xsum, commonsense_dialogue."""
    paper = published()
    rows = paper[(paper["table"] == "table3") & (paper["model"] == TEACHER) & (paper["metric"] == "teacher_dist")]
    return tuple(rows.sort_values("value")["task"])


def calibration(store: Store, summary: pd.DataFrame, profile: str, n_samples: int = 1000) -> Table | None:
    """One row per twin of ``profile`` with a teacher and an MLE row on its embedded data; None when none has."""
    present = set(summary.loc[summary["profile"] == profile, "task"])
    twins = sorted((t for t in present if t in TASKS), key=lambda t: order_key(t, TASKS))
    found = []
    for task in twins:
        info = store.task_info(task, profile)
        metric = info.primary
        look, chosen = lookup(summary, task, profile), common_rows(summary, task, profile)
        teacher, mle = (look.get((chosen.get(m), metric)) for m in (TEACHER, MLE))
        if teacher is None or mle is None:
            continue
        found.append((task, info, metric, look, chosen, teacher, mle))
    if not found:
        return None

    dists = {task: look[(chosen[TEACHER], "teacher_dist")]["mean"] for task, _, _, look, chosen, _, _ in found
             if (chosen[TEACHER], "teacher_dist") in look}
    order = [t for t in teacher_dist_order() if t in dists]
    span = max(dists.values()) - min(dists.values()) if len(dists) >= 2 else math.nan

    rows, data = [], []
    for task, info, metric, look, chosen, teacher, mle in found:
        sign = -1.0 if metric in info.lower_is_better else 1.0
        reps = replicates(store, {teacher["label"]: teacher, mle["label"]: mle}, n_samples)
        a, b = reps[teacher["label"]], reps[mle["label"]]
        diff = difference(a, b, PooledSeedVariance.of([a, b]))
        gap, low, high = (sign * v for v in (diff.estimate, diff.low, diff.high))
        low, high = min(low, high), max(low, high)
        scale = abs(teacher["mean"]) if teacher["mean"] else math.nan
        relative = gap / scale
        paper = paper_values(task, metric)
        paper_relative = ((paper["teacher"] - paper["mle"]) * sign / abs(paper["teacher"])
                          if {"teacher", "mle"} <= set(paper) else math.nan)
        ratio = relative / paper_relative if paper_relative else math.nan
        gap_ok = None if not math.isfinite(ratio) else GAP_RATIO[0] <= ratio <= GAP_RATIO[1]
        above = None if diff.exploratory or not math.isfinite(low) else at_least(
            diff if sign > 0 else difference(b, a, PooledSeedVariance.of([a, b]))) == HOLDS

        pre = {m: look.get((chosen.get(PREDISTILL), m)) for m in ("tvd_token", "acceptance")}
        tvd = pre["tvd_token"]
        tvd_ok = None if tvd is None else tvd["mean"] >= MIN_TOKEN_TVD
        dist = dists.get(task)
        dist_ok = None
        if dist is not None and len(order) >= 2:
            at = order.index(task)
            dist_ok = ((at == 0 or dists[order[at - 1]] < dist)
                       and (at == len(order) - 1 or dist < dists[order[at + 1]]))

        half = (high - low) / 2 if math.isfinite(low) else math.nan
        rows.append([
            Cell(text=task), Cell(text=metric_label(metric, info.lower_is_better)), Cell(teacher["mean"]),
            Cell(mle["mean"], mle["ci"]), Cell(gap, half), Cell(100 * relative, 100 * half / scale),
            Cell(100 * paper_relative), Cell(text=_mark(gap_ok)),
            Cell(text=_mark(above) if above is not None else f"{UNKNOWN} (n < {MIN_OWN_SEEDS})"),
            Cell(tvd["mean"], tvd["ci"]) if tvd else Cell(), Cell(text=_mark(tvd_ok)),
            Cell(pre["acceptance"]["mean"], pre["acceptance"]["ci"]) if pre["acceptance"] else Cell(),
            Cell(dist), Cell(paper.get("teacher_dist")), Cell(text=_mark(dist_ok)),
        ])
        data.append({
            "task": task, "profile": profile, "metric": metric, "teacher": teacher["mean"], "mle": mle["mean"],
            "mle_n": mle["n"], "gap": gap, "gap_ci_low": low, "gap_ci_high": high, "relative_gap": relative,
            "relative_gap_ci_low": low / scale, "relative_gap_ci_high": high / scale,
            "paper_teacher": paper.get("teacher", math.nan), "paper_mle": paper.get("mle", math.nan),
            "paper_relative_gap": paper_relative, "gap_ratio_to_paper": ratio, "gap_in_bounds": gap_ok,
            "teacher_above_mle": above,
            "predistill_n": tvd["n"] if tvd else 0,
            "predistill_tvd_token": tvd["mean"] if tvd else math.nan,
            "predistill_tvd_token_ci95": tvd["ci"] if tvd else math.nan, "tvd_in_bounds": tvd_ok,
            "predistill_acceptance": pre["acceptance"]["mean"] if pre["acceptance"] else math.nan,
            "predistill_acceptance_ci95": pre["acceptance"]["ci"] if pre["acceptance"] else math.nan,
            "teacher_dist": dist if dist is not None else math.nan,
            "paper_teacher_dist": paper.get("teacher_dist", math.nan), "teacher_dist_in_order": dist_ok,
            "teacher_dist_span": span,
            "teacher_dist_span_in_bounds": None if not math.isfinite(span) else span >= MIN_TEACHER_DIST_SPAN,
        })
    span_text = (f"{span:.1f} points ({_mark(span >= MIN_TEACHER_DIST_SPAN)} ≥ {MIN_TEACHER_DIST_SPAN:g})"
                 if math.isfinite(span) else "undefined (fewer than two twins)")
    caption = (
        "How close each twin is to the paper's regime, on the task's primary metric. teacher − MLE: the one teacher "
        "against the MLE student's mean over seeds, ± the 95% interval of the noise model (the MLE student's seeds "
        "and the test inputs; the teacher is one shared model); relative: divided by the teacher's score, in %, "
        f"beside the paper's Table 2; in bounds (✓) within {GAP_RATIO[0]:g}×–{GAP_RATIO[1]:g}× the paper's. "
        f"teacher > MLE: the interval above 0 (— with fewer than {MIN_OWN_SEEDS} MLE seeds: exploratory). "
        "token TVD and acceptance α = 1 − TVD: the pre-distilled student's next-token distributions against the "
        f"teacher's on its test outputs, mean ± 95% CI over its seeds; in bounds at ≥ {MIN_TOKEN_TVD:g}. TeacherDist: "
        "distinct word bigrams % over the teacher's samples per test input (one teacher: no interval), beside the "
        f"paper's Table 3; order: in the paper's order of the twins ({' < '.join(teacher_dist_order())}); the "
        f"twins' span: {span_text}.")
    header = ["twin", "metric", "teacher", "MLE", "teacher − MLE", "relative %", "paper relative %",
              f"{GAP_RATIO[0]:g}×–{GAP_RATIO[1]:g}×", "teacher > MLE (95%)", "pre-distilled token TVD",
              f"TVD ≥ {MIN_TOKEN_TVD:g}", "acceptance α", "TeacherDist", "paper TeacherDist", "order"]
    return Table(f"calibration_{profile}", f"Calibration of the twins against the paper's regime ({profile} profile)",
                 header, rows, caption, pd.DataFrame(data))

"""The paper's published numbers (:func:`harness.paper.published.published`) beside ours, and rank agreement.

Beside each published column stands the metric of ours computed the paper's way where the runs have it
(:func:`comparable_metrics`: DART's ``bleu`` → ``bleu_official``, the risks → ``r_llh_paper``, …), else the
metric of the same name; the tables name the metric of ours in each header.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..paper import KD_METHODS, PAPER_METRICS
from .load import Store
from .render import Cell, Table
from .ranking import kendall_tau, order_text
from .noise import MIN_OWN_SEEDS
from .stability import model_resamples, observed_signs, replicates, sure_signs, tau_bounds
from .summary import common_rows, lookup
from .tables import metric_label
from .teachers import main_teacher_note

ALPHA = 0.05   # τ's interval against the paper: its scores are exact, our settled signs carry the whole 5%


def comparable_metrics(described: dict) -> dict[str, str]:
    """A paper column → our metric computed its way, for a task as its runs describe it (manifest ``task``):
    the columns every task shares (:data:`harness.paper.PAPER_METRICS`), then the task's own ``paper_metrics``."""
    return {**PAPER_METRICS, **(described.get("paper_metrics") or {})}


def comparison(store: Store, summary: pd.DataFrame, task: str, profile: str,
               paper: pd.DataFrame, n_samples: int = 1000) -> tuple[Table, Table] | None:
    """(paper vs ours for every metric both report, Kendall τ of the KD methods per metric), or None.

    Each paper column is set beside our comparable metric where the store has it, else beside the metric
    of the same name; ``metric`` in the data is the paper's column, ``our_metric`` ours. τ's 95% interval
    (:func:`_tau_interval`): the bounds of τ over the orders of our true means that keep the pairs our data settle
    simultaneously, from ``n_samples`` draws of our means from the noise model
    (:func:`~harness.reporting.stability.model_resamples`), where every method has at least
    :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds."""
    pub = paper[(paper["task"] == task) & paper["table"].isin(["table2", "table3"]) & (paper["setting"] == "")]
    if pub.empty:
        return None
    info = store.task_info(task, profile)
    look, ours = lookup(summary, task, profile), common_rows(summary, task, profile)

    def held(metric: str) -> bool:
        return any((lab, metric) in look for lab in ours.values())

    comparable = comparable_metrics(store.tasks[task])
    beside = {m: comparable[m] if held(comparable.get(m, "")) else m for m in dict.fromkeys(pub["metric"])}
    metrics = [m for m, mine in beside.items() if held(mine)]
    if not metrics:
        return None
    models = list(dict.fromkeys([*pub["model"], *ours]))
    value = {(r.model, r.metric): r.value for r in pub.itertuples()}
    rows, data = [], []
    for model in models:
        cells = [Cell(text=ours.get(model, model))]
        for metric in metrics:
            line = look.get((ours.get(model), beside[metric]))
            theirs = value.get((model, metric))
            cells += [Cell(theirs), Cell(line["mean"], line["ci"]) if line else Cell()]
            data.append({"task": task, "profile": profile, "model": model, "row": ours.get(model), "metric": metric,
                         "our_metric": beside[metric], "paper": theirs, "ours": line["mean"] if line else None,
                         "ours_ci95": line["ci"] if line else None, "ours_n": line["n"] if line else None})
        rows.append(cells)
    header = ["model"] + [label for m in metrics for label in (f"{_paper_label(m, beside[m], info)} paper",
                                                               f"{metric_label(beside[m], info.lower_is_better)} ours")]
    side_by_side = Table(f"compare_{task}_{profile}", f"Paper vs ours — {task} ({profile} profile)", header, rows,
                         "Paper: Wen et al. (2023), Tables 2–3 (one run each). Ours: mean ± 95% CI over seeds, "
                         "of the metric each header names (computed the paper's way where the runs have it)."
                         + main_teacher_note(summary, [task], profile),
                         pd.DataFrame(data))

    tau_rows, tau_data = [], []
    for metric in [m for m in metrics if any((k, m) in value for k in KD_METHODS)]:
        mine_metric = beside[metric]
        lower = mine_metric in info.lower_is_better
        shared = [m for m in KD_METHODS if (m, metric) in value and (ours.get(m), mine_metric) in look]
        theirs = [value[(m, metric)] for m in shared]
        mine = [look[(ours[m], mine_metric)]["mean"] for m in shared]
        tau = kendall_tau(theirs, mine) if len(shared) >= 2 else math.nan
        low, high = _tau_interval(store, {ours[m]: look[(ours[m], mine_metric)] for m in shared}, theirs, lower,
                                  n_samples)
        order_p, order_o = order_text(dict(zip(shared, theirs)), lower), order_text(dict(zip(shared, mine)), lower)
        tau_rows.append([Cell(text=_paper_label(metric, mine_metric, info)),
                         Cell(text=metric_label(mine_metric, info.lower_is_better)), Cell(text=str(len(shared))),
                         Cell(tau), Cell(text=f"[{low:.2f}, {high:.2f}]" if math.isfinite(low) else "—"),
                         Cell(text=order_p or "—"), Cell(text=order_o or "—")])
        tau_data.append({"task": task, "profile": profile, "metric": metric, "our_metric": mine_metric,
                         "primary": mine_metric == info.primary or metric == info.primary,
                         "n_methods": len(shared), "kendall_tau": tau, "kendall_tau_ci_low": low,
                         "kendall_tau_ci_high": high, "methods": " ".join(shared),
                         "paper_order": order_p, "our_order": order_o})
    agreement = Table(f"kendall_{task}_{profile}", f"Rank agreement with the paper — {task} ({profile} profile)",
                      ["paper metric", "our metric", "KD methods", "Kendall τ", "τ 95% interval",
                       "paper: best → worst", "ours: best → worst"], tau_rows,
                      f"Kendall's τ-b between the paper's and our ordering of the KD methods "
                      f"({', '.join(KD_METHODS)}) present in both; 1 = same order, −1 = reversed. "
                      f"Interval: bounds of τ over the orders that keep every pair of ours whose order our data "
                      f"settle simultaneously at 95% (a step-down max-t band over {n_samples} draws of our means from "
                      f"one model of seed and test-input noise; the paper's scores taken as published; the least and "
                      f"the largest τ over the strict orders of our methods that keep the settled pairs): at least 95% "
                      f"for the τ of our true means however close they are (asymptotically, under that model), and "
                      f"conservative; — where a method has fewer than {MIN_OWN_SEEDS} seeds (exploratory) or the draws "
                      f"are too few for the quantile. Primary metric: {info.primary}."
                      + main_teacher_note(summary, [task], profile),
                      pd.DataFrame(tau_data))
    return side_by_side, agreement


def _tau_interval(store: Store, lines: dict[str, dict], theirs: list[float], lower: bool,
                  n_samples: int) -> tuple[float, float]:
    """The 95% interval of τ between the paper's values and our true means (rows ``lines``, in ``theirs``' order):
    :func:`~harness.reporting.stability.tau_bounds` of our settled signs (:func:`sure_signs` over draws of our
    means from the noise model) against the paper's; NaN unless every row has at least MIN_OWN_SEEDS seeds and there
    are enough draws for the quantile."""
    resamples = model_resamples(replicates(store, lines, n_samples), lower, n_samples) if len(lines) >= 2 else None
    if resamples is None:
        return math.nan, math.nan
    ours = sure_signs(np.array([line["mean"] for line in lines.values()]), resamples.of(list(lines)), ALPHA)
    if ours is None:   # too few draws for the quantile: no interval, rather than [−1, 1]
        return math.nan, math.nan
    return tau_bounds(observed_signs(theirs), ours)


def _paper_label(metric: str, ours: str, info) -> str:
    """The paper's column name, with ↓ when the metric of ours beside it is lower-is-better."""
    return metric_label(metric, frozenset({metric}) if ours in info.lower_is_better else frozenset())


def published_table(paper: pd.DataFrame, table: str, task: str) -> Table | None:
    """A published Table 4 or Figure 2 as the paper gives it (rows: model and setting; columns: metrics)."""
    part = paper[(paper["table"] == table) & (paper["task"] == task)]
    if part.empty:
        return None
    wide = part.pivot_table(index=["model", "setting"], columns="metric", values="value", sort=False)
    metrics = list(dict.fromkeys(part["metric"]))
    rows = [[Cell(text=model), Cell(text=setting)] + [Cell(wide.loc[(model, setting), m],
                                                           suffix="×" if m == "speedup" else "") for m in metrics]
            for model, setting in wide.index]
    title = {"table4": "Table 4", "figure2": "Figure 2"}.get(table, table)
    header = ["model", "setting"] + [metric_label(m) for m in metrics]
    return Table(f"paper_{table}_{task}", f"{title} — {task}, as published", header, rows,
                 "Wen et al. (2023); Figure 2 read off a bar chart (±0.05).", part.reset_index(drop=True))

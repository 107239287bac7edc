"""Does a twin predict real text? The order of methods on a task's embedded twin against its order on released
data at the same model size (runs with ``data.source`` local or hub, reported as ``<task>-real``).

Per task with both views in one profile: the students both views hold (each model's row from
:func:`~harness.reporting.summary.common_rows`), their primary-metric means over seeds on the twin and on real
text, and Kendall's τ-b between the two orders, once over every shared student and once without
:data:`OUTLIER` (τ over the others). τ's 95% interval is that of the true means' τ: each view's pairs whose order
its data settle simultaneously at 97.5% (:func:`~harness.reporting.stability.sure_signs`, on draws of the view's
means from the noise model, :func:`~harness.reporting.stability.model_resamples`: seeds and test inputs
together; the views drawn independently, their test inputs being unrelated), and bounds of τ over the orders
that keep those signs (:func:`~harness.reporting.stability.tau_bounds`: at least 95%, conservative); none unless every row of
both views has at least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds. Both τs read the same signs (the
τ without the outlier over the other rows), so their intervals differ by the outlier's pairs only.
Half-width: half the interval's length, (high − low) / 2 (the interval need not be symmetric about τ).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..paper import TASKS, order_key
from ..store.labels import TEACHER
from .load import REAL_TEXT, Store
from .ranking import kendall_tau, order_text
from .render import Cell, Table
from .noise import MIN_OWN_SEEDS
from .stability import model_resamples, replicates, sure_signs, tau_bounds
from .summary import common_rows, lookup
from .tables import metric_label

MIN_MODELS = 3   # τ over two rows is ±1 whatever the data: no order to compare
#: The method the second τ leaves out: ENGINE, the outlier. It collapses on real text (docs/findings.md: in the
#: committed report ≈ 10 BLEU on real DART against ≥ 23 for every other student; its dialogue outputs loop), so
#: when it is last on the twin too its n − 1 pairs agree whatever the twin says of the others (the committed DART
#: τ 0.50 is 0.33 without it). τ without it asks whether the twin orders the students that compete.
OUTLIER = "engine"


def real_text(store: Store, summary: pd.DataFrame, profile: str, n_samples: int = 1000) -> Table | None:
    """One row per task whose twin and real-text view in ``profile`` share at least :data:`MIN_MODELS` students;
    None when none has."""
    present = set(summary.loc[summary["profile"] == profile, "task"])
    twins = sorted((t for t in present if t + REAL_TEXT in present), key=lambda t: order_key(t, TASKS))
    rows, data = [], []
    for task in twins:
        real = task + REAL_TEXT
        info = store.task_info(task, profile)
        metric, lower = info.primary, info.primary in info.lower_is_better
        if metric not in store.task_info(real, profile).metrics:
            continue
        views = {}
        for name in (task, real):
            look, chosen = lookup(summary, name, profile), common_rows(summary, name, profile)
            views[name] = {m: look[(label, metric)] for m, label in chosen.items()
                           if m != TEACHER and (label, metric) in look}
        models = [m for m in views[task] if m in views[real]]
        if len(models) < MIN_MODELS:
            continue
        twin = [views[task][m]["mean"] for m in models]
        ours = [views[real][m]["mean"] for m in models]
        signs = _settled_signs(store, views[task], views[real], models, lower, n_samples)
        rest = [i for i, m in enumerate(models) if m != OUTLIER]   # the same signs' other rows
        every, without = _tau(twin, ours, signs, range(len(models))), _tau(twin, ours, signs, rest)
        seeds = min(min(views[v][m]["n"] for m in models) for v in views)
        twin_order, real_order = order_text(dict(zip(models, twin)), lower), order_text(dict(zip(models, ours)), lower)
        rows.append([Cell(text=task), Cell(text=metric_label(metric, info.lower_is_better)),
                     Cell(text=str(len(models))), Cell(text=str(seeds)), *every.cells(), *without.cells(),
                     Cell(text=twin_order), Cell(text=real_order)])
        data.append({"task": task, "profile": profile, "metric": metric, "n_methods": len(models), "min_seeds": seeds,
                     **every.columns("kendall_tau"), **without.columns(f"kendall_tau_without_{OUTLIER}"),
                     "methods": " ".join(models), "twin": " ".join(f"{v:.4g}" for v in twin),
                     "real": " ".join(f"{v:.4g}" for v in ours), "twin_order": twin_order, "real_order": real_order})
    if not rows:
        return None
    caption = (f"Kendall's τ-b between the order of the students on the embedded twin and on real text "
               f"(<task>{REAL_TEXT}: released data at the twin's sizes and model size), by the task's primary metric's "
               f"mean over seeds; 1 = the twin predicts the order, −1 = it reverses it. Interval: bounds of τ over "
               f"the orders that keep every pair whose order each view's data settle simultaneously at 97.5% (a "
               f"step-down max-t band over {n_samples} draws of the view's means from one model of seed and "
               f"test-input noise; the least and the largest τ over the pairs of strict orders that keep them): "
               f"at least 95% for the τ of the true means however close they are (asymptotically, under that "
               f"model), and conservative (with three seeds few pairs settle); — where a row has fewer than "
               f"{MIN_OWN_SEEDS} seeds (exploratory) or the draws are too few for the quantile. "
               f"Without {OUTLIER}: τ over the other students with the same settled pairs, so the two intervals "
               f"differ by {OUTLIER}'s pairs (— where fewer than {MIN_MODELS} remain). The outlier "
               f"{OUTLIER} collapses on real text, far below every other student: a student last in both orders "
               f"makes all its pairs agree whatever the twin says of the others. min seeds: the fewest seeds "
               f"of any row in either view.")
    return Table(f"real_text_{profile}", f"Twin vs real text: the order of methods ({profile} profile)",
                 ["task", "metric", "methods", "min seeds", "Kendall τ", "τ 95% interval", f"τ without {OUTLIER}",
                  "its 95% interval", "twin: best → worst",
                  "real text: best → worst"], rows, caption, pd.DataFrame(data))


@dataclass(frozen=True)
class _Tau:
    """τ-b between the two views' means over some of the students, and its interval (:func:`tau_bounds`)."""

    tau: float
    low: float
    high: float

    def cells(self) -> list[Cell]:
        return [Cell(self.tau), Cell(text=f"[{self.low:.2f}, {self.high:.2f}]" if math.isfinite(self.low) else "—")]

    def columns(self, name: str) -> dict[str, float]:
        """The csv's columns: ``name``, its interval, and the interval's half-width (high − low) / 2 (goal checks
        read it: the interval need not be symmetric about τ)."""
        return {name: self.tau, f"{name}_ci_low": self.low, f"{name}_ci_high": self.high,
                f"{name}_half_width": (self.high - self.low) / 2}


def _tau(twin: list[float], real: list[float], signs: tuple[np.ndarray, np.ndarray] | None,
         columns: Sequence[int]) -> _Tau:
    """τ over the students at ``columns`` (indices into the views' lists) and its interval from the views' settled
    ``signs`` (NaN without them); all NaN under :data:`MIN_MODELS` students."""
    columns = list(columns)
    if len(columns) < MIN_MODELS:
        return _Tau(math.nan, math.nan, math.nan)
    tau = kendall_tau([twin[i] for i in columns], [real[i] for i in columns])
    if signs is None:
        return _Tau(tau, math.nan, math.nan)
    return _Tau(tau, *tau_bounds(*signs, columns))


#: Each view's share of the 5% a τ interval may miss: the two views' settled signs cover together at 95%.
VIEW_ALPHA = 0.025


def _settled_signs(store: Store, twin: dict[str, dict], real: dict[str, dict], models: list[str], lower: bool,
           n_samples: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Each view's settled signs of ``models`` (rows and columns in that order; :func:`sure_signs` at
    :data:`VIEW_ALPHA`), the two views drawn on independent streams; None unless both views can be drawn, with
    enough draws for the quantile."""
    signs = []
    for stream, view in enumerate((twin, real)):
        lines = {view[m]["label"]: view[m] for m in models}
        resamples = model_resamples(replicates(store, lines, n_samples, stream), lower, n_samples, stream)
        if resamples is None:
            return None
        settled = sure_signs(np.array([view[m]["mean"] for m in models]), resamples.of(list(lines)), VIEW_ALPHA)
        if settled is None:   # too few draws for the quantile: no interval, rather than [−1, 1]
            return None
        signs.append(settled)
    return signs[0], signs[1]

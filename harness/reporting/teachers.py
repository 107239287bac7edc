"""Several teachers: runs grouped by their upstream seed, and a comparison's interval over teachers.

A cell's teacher, its pseudo-labels and the pre-distilled student come from ``upstream_seed``
(:class:`harness.config.RunConfig`); a grid varies it with an axis (``--axis upstream_seed=42,43,44``, or the
shipped ``table2_teachers`` spec). Every run of one upstream seed shares one teacher, so its method seeds are
replicates *within* that teacher; runs of different upstream seeds are not plain replicates of each other. A
claim about a method, not about one teacher, treats the teacher as a random draw — a two-level model, teacher,
then method seed within teacher (sign convention of :mod:`~harness.reporting.noise`: A − B on the metric's scale):

    D_t = δ + a_t + ε_t          (t = 1..K teachers; D_t the difference of the two rows' means at teacher t)

``a_t`` (variance τ²): how much teacher t moves the difference; ``ε_t``: its seeds' and inputs' noise within the
teacher (the noise model's). The estimate is the unweighted mean D̄ of the K per-teacher differences; its variance

    Var(D̄) = (τ² + mean_t Var(ε_t)) / K

is estimated, as the cluster-means analysis of a nested design does, by the sample variance of the D_t over
teachers divided by K (K − 1 degrees of freedom) — which holds τ² and every within-teacher part (seed, seed by
input, teacher by input) without estimating any of them, whatever the seeds per teacher (each D_t may have its
own variance; the unweighted mean keeps the estimate unbiased). Rows of one teacher are compared at that teacher
(paired by teacher: a better teacher lifts every student it makes). The test inputs are shared by every teacher,
so their part common to all teachers is not in that variance: it is added from one bootstrap of the inputs shared
by every row and teacher — the variance over draws of D̄* less the teacher-by-input part the first term already
holds (the mean over teachers of Var*(D*_t − D̄*), divided by K − 1; the same small-sample correction
:mod:`~harness.reporting.noise` makes for seeds). Interval: D̄ ± t_{0.975, ν} √(V_teacher + V_input), ν by
Satterthwaite (the input part with infinite degrees of freedom).

Why not an inverse-variance random-effects meta-analysis (DerSimonian–Laird, Hartung–Knapp)? It weights each
teacher by its own within variance and assumes the K estimates independent; here they share the test inputs, so it
would count the input part K times too little, and at three seeds per teacher its weights are noise. The cluster
means need no within-teacher variance. ``tests/test_teachers.py`` checks the coverage by simulation at K = 3
teachers of 3 seeds: about 93% for a 95% interval (2,000 simulations: 93.4% with a teacher effect larger than the
seeds', 94.3% without one) — Satterthwaite's degrees of freedom grow when the teacher part happens to come out
small, a known slight liberality at two degrees of freedom; with K − 1 degrees of freedom regardless the interval
covers 98-100% (too wide to decide much), and without the input part 90-96%.

Fewer than :data:`~harness.reporting.noise.MIN_OWN_SEEDS` teachers: exploratory, as rows with fewer seeds are.

Rows grown by ``harness grid --until-decided`` (:mod:`~harness.reporting.sequential`): the design's looks are per
teacher (an upstream seed is a group of the grid), so each per-teacher verdict reads its look's repeated interval,
while the interval over teachers takes every seed of each teacher as it stands — a fixed-K interval whose D_t had
data-dependent n. Simulated (K = 3, looks 3, 5, …, 11, O'Brien–Fleming, 800-1,500 runs each): 93-96% coverage for
a 95% interval, as with three fixed seeds per teacher, the least (93%) where a large difference stops early at
every teacher; a finding's reason names the interval it read (:func:`~harness.reporting.findings.judge`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .load import of_task
from .noise import Difference, Replicates, input_variance
from .summary import UPSTREAM, common_rows


def upstream_seeds(summary: pd.DataFrame, task: str, profile: str) -> list:
    """The upstream seeds a task's rows were made at, where they vary (an axis of the task); [] where every run
    shares one teacher (the axis then names no row)."""
    part = of_task(summary, task, profile)
    if part.empty or "setting" not in part:
        return []
    values = {setting.get(UPSTREAM) for setting in part["setting"]}
    return sorted(v for v in values if v is not None)


def main_teacher_note(summary: pd.DataFrame, tasks: Sequence[str], profile: str) -> str:
    """A caption's sentence for a table of one row per model (:func:`~harness.reporting.summary.common_rows`) where
    some task's runs were made at several teachers: which teacher's rows it shows. "" where none was."""
    several = [task for task in tasks if upstream_seeds(summary, task, profile)]
    if not several:
        return ""
    return (f" {', '.join(several)}: made at several teachers (upstream seeds); the rows shown are the main "
            f"teacher's (those the task's Table 2 shows without an upstream_seed mark), not a mean over teachers — "
            f"the findings take every teacher.")


def rows_by_teacher(summary: pd.DataFrame, task: str, profile: str) -> dict[object, dict[str, str]]:
    """upstream seed → (model → the label of its row at that teacher,
    :func:`~harness.reporting.summary.common_rows` among that teacher's rows). A row whose runs share one
    evaluation across upstream seeds (the axis does not touch it: none in its setting) belongs to every teacher."""
    part = of_task(summary, task, profile)
    out = {}
    for seed in upstream_seeds(summary, task, profile):
        mine = part[[setting.get(UPSTREAM) in (seed, None) for setting in part["setting"]]]
        out[seed] = common_rows(mine, task, profile)
    return out


def pooled_line(lines: dict, reference: object = None) -> dict:
    """One summary line standing for a model's rows at several teachers (upstream seed → line, one metric): the
    unweighted mean of the teachers' means (each teacher counts once, as :func:`across` weighs them), every seed's
    value and replicate, the per-teacher lines under ``teachers`` and, under ``reference``, the reference teacher
    (:func:`~harness.reporting.summary.reference_teacher`) where the model has a row there."""
    first = next(iter(lines.values()))
    shown = {a: v for a, v in first.get("shown", {}).items() if a != UPSTREAM}
    return {**first, "label": f"{first['model']} [{len(lines)} teachers]", "shown": shown,
            "mean": float(np.mean([line["mean"] for line in lines.values()])),
            "n": sum(line["n"] for line in lines.values()),
            "values": [v for line in lines.values() for v in line["values"]],
            "replicates": [r for line in lines.values() for r in line["replicates"]],
            "teachers": dict(lines), "reference": reference if reference in lines else None}


def across(pairs: Sequence[tuple[Replicates, Replicates]], level: float = 0.95) -> Difference:
    """A − B over teachers (``pairs[t]``: the two rows at teacher t, on one bootstrap draw of the inputs shared by
    every row and teacher, or none) with its interval under the model above: the mean over teachers of each
    teacher's difference of means. ``n_a`` and ``n_b`` of the result count teachers; ``seed_variance`` is the
    teacher part (V_teacher, which holds the seeds'), ``input_variance`` the input part."""
    k = len(pairs)
    per_teacher = np.array([a.mean - b.mean for a, b in pairs], dtype=float)
    estimate = float(per_teacher.mean()) if k else math.nan
    v_input = _input_part(pairs)
    if k < 2:
        return Difference(estimate, math.nan, math.nan, math.nan, math.nan, k, k, math.nan, v_input)
    v_teacher = float(per_teacher.var(ddof=1)) / k
    total = v_teacher + v_input
    df = total * total / (v_teacher * v_teacher / (k - 1)) if v_teacher > 0 else math.inf
    out = Difference(estimate, math.nan, math.nan, math.sqrt(total), df, k, k, v_teacher, v_input)
    low, high = out.interval(level)
    return Difference(estimate, low, high, out.se, df, k, k, v_teacher, v_input)


def _input_part(pairs: Sequence[tuple[Replicates, Replicates]]) -> float:
    """V_input of D̄: the bootstrap variance of the mean over teachers of the per-teacher differences, less the
    teacher-by-input part that the sample variance over teachers already holds — :func:`~.noise.input_variance`
    with the K per-teacher differences as the replicates; 0 without shared draws."""
    if not pairs or any(r.resampled is None for pair in pairs for r in pair):
        return 0.0
    draws = np.stack([a.resampled.mean(axis=1) - b.resampled.mean(axis=1) for a, b in pairs], axis=1)   # [B, K]
    return input_variance(Replicates.of([a.mean - b.mean for a, b in pairs], draws), None)


def teacher_level(rows: Sequence[Replicates]) -> Replicates:
    """Several teachers' rows of one model as one row whose replicates are the teachers (each teacher's mean over
    its own replicates; their bootstrap draws side by side where every row has them): for a comparison of rows on
    unrelated teachers (two tasks' teachers), where nothing pairs them by upstream seed."""
    values = [r.mean for r in rows]
    if all(r.resampled is not None for r in rows):
        return Replicates.of(values, np.stack([r.resampled.mean(axis=1) for r in rows], axis=1))
    return Replicates.of(values)

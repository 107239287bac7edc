"""Where the variance comes from: a model's score on a twin split into the parts that a design can buy down.

One run's corpus score on the task's test set (``m`` inputs), for one model (method) of one task, is modelled as

    x[t, s, d] = μ + a_t + b_ts + c_tsd            (inputs fixed)

``a`` (variance σ²_T): the **upstream seed** — the teacher, its pseudo-labels and the pre-distilled student that
every run of upstream seed t shares (:mod:`~harness.reporting.teachers`); ``b`` (σ²_S): the **method seed** within
that teacher (data order, initialisation of what is new, the method's samples); ``c`` (σ²_D): **decoding
randomness** — the spread between test decodings of one trained model (a sampled decoding, dialogue's nucleus
sampling), measured where an evaluation decoded the test inputs more than once (``eval_decode_seeds``: the
teacher's), else left in σ²_S. Each part is the variance of one run's score on the fixed test set, so it holds the
share of the inputs' noise that is particular to the run (a sampled output of input i differs between decodings).

The **test inputs**: a new test set of the same size moves every run's score; σ²_I(run) is the variance of one
run's score over bootstrap draws of the inputs (per-input parts, :func:`~harness.reporting.stability.decompose`),
and σ²_I(shared) the part common to every run of the model — what averaging seeds, teachers or decodings never
removes, only more inputs do — the bootstrap variance of the mean over every run less the run-specific part
(:func:`~harness.reporting.noise.input_variance`, the runs as replicates; over several teachers the teachers' means
as replicates, so that a teacher's own interaction with the inputs, shared by its runs and held by σ²_T on the
fixed test set, is not counted again). In a comparison of two models the
inputs' difficulty common to both cancels as well, so a difference's input part is smaller than either row's.

Estimates (moments, the ANOVA estimators of a nested design; scipy's and statsmodels' mixed models ask for more
levels than three teachers of three seeds to converge): σ²_D the pooled variance between a run's decodings; σ²_S
the pooled variance of run means (over their decodings) within a teacher, less σ²_D times the mean of 1/d; σ²_T
the variance of the teacher means less the mean over teachers of (within-teacher variance)/n_t; each truncated at
0, NaN where nothing measures it (one teacher, one run per teacher, one decoding per run). With one run per teacher
σ²_T holds the method seed's part too (the teacher's own row: no method seed made it).

The variance of a model's mean over K teachers × n seeds × d decodings, test set fixed in size, is then

    Var = σ²_T / K + σ²_S / (K n) + σ²_D / (K n d) + σ²_I(shared)          (:func:`design_variance`)

For a comparison of two models A − B (:func:`contrast`, the report's second table) the same parts are taken of
the difference, paired by teacher: a teacher's effect both models share cancels (a better teacher lifts both), so
does the inputs' common difficulty; :func:`half_width` and :func:`seeds_needed` turn them into the interval a design
of K teachers × n seeds would give — at one teacher (a verdict for that teacher) or over several (the teacher part
in, :mod:`~harness.reporting.teachers`).

``tests/test_variance.py`` simulates data with known parts and checks that these estimates recover them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..paper import KD_METHODS, MODELS, TASKS, order_key
from ..paper.claims import F_DISTILL
from .load import Store
from .noise import Replicates, input_variance
from .render import Cell, Table
from .stability import replicates, teacher_decodings
from .summary import common_rows, lookup
from .tables import metric_label
from .teachers import across, rows_by_teacher, teacher_level


@dataclass(frozen=True)
class Components:
    """The variance of one run's score from each source (metric units squared; NaN: not measured), and how many of
    each level measured it."""

    teacher: float          # σ²_T: the upstream seed (teacher, pseudo-labels, pre-distilled student)
    seed: float             # σ²_S: the method seed within a teacher (decoding noise too where d = 1)
    decode: float           # σ²_D: between test decodings of one trained model
    input_run: float        # σ²_I(run): one run's score over test sets of its size
    input_shared: float     # σ²_I(shared): the part of it common to every run of the model
    teachers: int           # K
    runs: int               # runs in all (Σ n_t)
    decodes: int            # the most decodings of a run
    inputs: int = 0         # m (0: unknown)
    #: σ²_I(teacher): the input part at one teacher — the shared part plus that teacher's own interaction with the
    #: inputs, which a verdict for one teacher has and the interval over teachers leaves in σ²_T (:func:`contrast`)
    input_teacher: float = math.nan


def _pooled(groups: Sequence[np.ndarray]) -> tuple[float, int]:
    """(the variance pooled over the groups with two or more values, weighted by n − 1; its degrees of freedom)."""
    usable = [np.asarray(g, float) for g in groups if len(g) >= 2]
    df = sum(len(g) - 1 for g in usable)
    if not df:
        return math.nan, 0
    return float(sum((len(g) - 1) * g.var(ddof=1) for g in usable) / df), df


def estimate(scores: Sequence[Sequence[Sequence[float]]], resampled: Sequence[Sequence[np.ndarray]] | None = None,
             inputs: int = 0) -> Components:
    """:class:`Components` from ``scores[t][s]`` — the corpus scores of run s of teacher t, one per test decoding —
    and, where given, ``resampled[t][s]``: the same scores on B bootstrap draws of the test inputs (``[B, d]``, one
    draw shared by every run)."""
    runs = [[np.asarray(run, float) for run in teacher] for teacher in scores]
    flat = [run for teacher in runs for run in teacher]
    decode, _ = _pooled(flat)
    inverse_d = float(np.mean([1.0 / len(run) for run in flat]))
    decode_share = decode * inverse_d if math.isfinite(decode) else 0.0   # in each run mean's variance
    means = [np.array([run.mean() for run in teacher]) for teacher in runs]
    within, _ = _pooled(means)
    seed = max(within - decode_share, 0.0) if math.isfinite(within) else math.nan
    if len(means) >= 2:
        teacher_means = np.array([m.mean() for m in means])
        inside = within if math.isfinite(within) else decode_share     # one run per teacher: its seed stays in σ²_T
        teacher = max(float(teacher_means.var(ddof=1)) - float(np.mean([inside / len(m) for m in means])), 0.0)
    else:
        teacher = math.nan
    input_run = input_shared = math.nan
    if resampled is not None:
        by_teacher = [np.concatenate([np.asarray(r, float).reshape(np.shape(r)[0], -1) for r in teacher], axis=1)
                      for teacher in resampled]                          # per teacher: [B, its decodings]
        columns = np.concatenate(by_teacher, axis=1)                     # [B, every decoding], in flat's order
        input_run = float(columns.var(axis=0, ddof=1).mean())
        # Shared by every run: with one teacher, the runs' draws as replicates (less the run-specific part); with
        # several, the teachers' mean draws as replicates — a teacher's own interaction with the inputs is shared by
        # its runs, so taking runs of different teachers for exchangeable replicates would leave
        # σ²_TI (n − 1)/(K n − 1) of it in the shared part (the teacher part already holds it, on fixed inputs).
        if len(by_teacher) >= 2:
            input_shared = input_variance(teacher_level([Replicates.of(np.concatenate(run_scores), draws)
                                                         for run_scores, draws in zip(runs, by_teacher)]), None)
        else:
            input_shared = input_variance(Replicates.of(np.concatenate(flat), columns), None)
    return Components(teacher, seed, decode, input_run, input_shared, len(runs), len(flat),
                      max(len(run) for run in flat), inputs)


def design_variance(c: Components, teachers: int, seeds: int, decodes: int = 1) -> float:
    """The variance of a model's mean over ``teachers`` × ``seeds`` × ``decodes`` at this test set's size (see the
    module's formula; an unmeasured part counts 0, a NaN teacher part too when ``teachers`` is 1)."""
    def part(value: float) -> float:
        return value if math.isfinite(value) else 0.0
    return (part(c.teacher) / teachers + part(c.seed) / (teachers * seeds)
            + part(c.decode) / (teachers * seeds * decodes) + part(c.input_shared))


def _run_means(scores) -> list[np.ndarray]:
    return [np.array([np.mean(run) for run in teacher], dtype=float) for teacher in scores]


def _teacher_rows(scores, draws) -> list[Replicates]:
    """Each teacher's runs as one row of the noise model: run means over their decodings, and the same on the draws."""
    rows = []
    for t, means in enumerate(_run_means(scores)):
        resampled = None if draws is None else np.stack(
            [np.asarray(run, float).reshape(np.shape(run)[0], -1).mean(axis=1) for run in draws[t]], axis=1)
        rows.append(Replicates.of(means, resampled))
    return rows


def contrast(a_scores, b_scores, a_draws=None, b_draws=None) -> Components:
    """:class:`Components` of the difference of two models' means, A − B, paired by teacher (``a_scores[t]`` and
    ``b_scores[t]`` at the same upstream seed, as :func:`estimate` takes them; their runs are not paired): the seed
    part σ²_S,A + σ²_S,B (decoding noise included); the teacher part the variance over teachers of the per-teacher
    differences of means less their within-teacher share (Σ_model W/n_t, W the variance of run means within a
    teacher); the input part what the two share on the same draws — the input part of the difference of their
    means, less the run-specific noise (:func:`~harness.reporting.noise.input_variance`; over teachers
    :func:`~harness.reporting.teachers.across`'s). The inputs' difficulty common to both models cancels."""
    means_a, means_b = _run_means(a_scores), _run_means(b_scores)
    within_a, within_b = _pooled(means_a)[0], _pooled(means_b)[0]
    seed = within_a + within_b
    k = len(means_a)
    if k >= 2 and math.isfinite(seed):
        per_teacher = np.array([a.mean() - b.mean() for a, b in zip(means_a, means_b)])
        share = np.mean([within_a / len(a) + within_b / len(b) for a, b in zip(means_a, means_b)])
        teacher = max(float(per_teacher.var(ddof=1)) - float(share), 0.0)
    else:
        teacher = math.nan
    shared = one_teacher = math.nan
    if a_draws is not None and b_draws is not None:
        pairs = list(zip(_teacher_rows(a_scores, a_draws), _teacher_rows(b_scores, b_draws)))
        one_teacher = float(np.mean([input_variance(*pair) for pair in pairs]))
        shared = across(pairs).input_variance if k >= 2 else one_teacher
    runs = sum(len(m) for m in means_a) + sum(len(m) for m in means_b)
    return Components(teacher, seed, math.nan, math.nan, shared, k, runs, 1, input_teacher=one_teacher)


def half_width(c: Components, teachers: int, seeds: int, level: float = 0.95) -> float:
    """The half-width of a comparison's interval at ``teachers`` × ``seeds`` (per model and teacher), from the
    components of the difference (:func:`contrast`): at one teacher, a verdict for that teacher — its part left out,
    the input part that teacher's (σ²_I(teacher)), t with 2(n − 1) degrees of freedom (Welch's at equal variances); over several, the teacher part in and t with
    K − 1 (the interval over teachers, :func:`~harness.reporting.teachers.across`)."""
    if teachers == 1:   # the teacher's own interaction with the inputs is then input noise, not a teacher part
        inputs = c.input_teacher if math.isfinite(c.input_teacher) else c.input_shared
        variance = design_variance(replace(c, teacher=0.0, input_shared=inputs), 1, seeds)
        df = 2 * (seeds - 1)
    else:
        variance = design_variance(c, teachers, seeds)
        df = teachers - 1
    return float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(variance) if df > 0 else math.inf


def seeds_needed(c: Components, teachers: int, target: float, most: int = 100) -> int | None:
    """The fewest method seeds per model and teacher (2 to ``most``) whose :func:`half_width` is at most
    ``target``; None where none is (the teacher or the inputs' part alone is too large: more teachers or a larger
    test set, not more seeds)."""
    if teachers > 1 and not math.isfinite(c.teacher):
        return None
    return next((n for n in range(2, most + 1) if half_width(c, teachers, n) <= target), None)


# --------------------------------------------------------------------------- from a store
def task_rows(summary: pd.DataFrame, task: str, profile: str, metric: str) -> dict[str, dict[str, dict]]:
    """model → (label → its summary line of ``metric``) at each teacher (upstream seed,
    :func:`~harness.reporting.teachers.rows_by_teacher`; the common row where there is one teacher), models in
    the findings' order (so that the bootstrap draws of a task's rows are the ones the findings drew, kept on the
    store)."""
    look = lookup(summary, task, profile)
    by_teacher = rows_by_teacher(summary, task, profile) or {None: common_rows(summary, task, profile)}
    out = {}
    for model in dict.fromkeys(m for chosen in by_teacher.values() for m in chosen):
        labels = dict.fromkeys(chosen[model] for chosen in by_teacher.values() if model in chosen)
        lines = {label: look[(label, metric)] for label in labels if (label, metric) in look}
        if lines:
            out[model] = lines
    return out


def model_data(store: Store, rows: dict, model: str, n_samples: int = 1000):
    """(scores, draws or None, inputs) of ``model`` as :func:`estimate` takes them, from ``rows``
    (:func:`task_rows` of its task): its row at each teacher, its runs' stored scores (a teacher's recorded
    decodings as decodings of its one run) and, where every run's examples reproduce them, their bootstrap draws of
    the test inputs (one draw shared by the task's rows); None where the model has no row."""
    lines = rows.get(model)
    if not lines:
        return None
    every = {label: line for mine in rows.values() for label, line in mine.items()}
    drawn = replicates(store, every, n_samples)
    decoded = {label: teacher_decodings(store, line) is not None for label, line in lines.items()}
    if any(decoded.values()):
        drawn = {**drawn, **replicates(store, lines, n_samples, decodings=True)}
    scores, draws = [], []
    for label in lines:
        r = drawn[label]
        scores.append([list(r.values)] if decoded[label] else [[v] for v in r.values])
        if r.resampled is not None:
            draws.append([r.resampled] if decoded[label] else [r.resampled[:, [s]] for s in range(r.n)])
    run_id = next(iter(lines.values()))["replicates"][0].run_id
    inputs = len(store.examples(run_id, model)) if (store.root / "runs" / run_id / "examples.parquet").is_file() else 0
    return scores, draws if len(draws) == len(scores) else None, inputs


def model_components(store: Store, summary: pd.DataFrame, task: str, profile: str, model: str, metric: str,
                     n_samples: int = 1000, rows: dict | None = None) -> Components | None:
    """:class:`Components` of ``model``'s ``metric`` on one task (:func:`model_data`); None where the model has no
    row. ``rows``: :func:`task_rows` of the task, where the caller has them."""
    rows = task_rows(summary, task, profile, metric) if rows is None else rows
    data = model_data(store, rows, model, n_samples)
    return None if data is None else estimate(*data)


def contrast_components(store: Store, summary: pd.DataFrame, task: str, profile: str, a: str, b: str, metric: str,
                        n_samples: int = 1000, rows: dict | None = None) -> Components | None:
    """:func:`contrast` of models ``a`` − ``b`` on one task, their rows paired by teacher; None unless both have a
    row at the same teachers."""
    rows = task_rows(summary, task, profile, metric) if rows is None else rows
    mine, theirs = model_data(store, rows, a, n_samples), model_data(store, rows, b, n_samples)
    if mine is None or theirs is None or len(mine[0]) != len(theirs[0]):
        return None
    both = mine[1] is not None and theirs[1] is not None
    return contrast(mine[0], theirs[0], mine[1] if both else None, theirs[1] if both else None)


#: The half-width a comparison of the paper's Table 2 should reach (issue 29's goal 2: ±0.6 points at 95%).
TARGET_HALF_WIDTH = 0.6


def contrast_table(store: Store, summary: pd.DataFrame, profile: str, n_samples: int = 1000,
                   target: float = TARGET_HALF_WIDTH) -> Table | None:
    """Per task, the paper's Table 2 comparisons (each KD method and pre-distillation against MLE, each f-DISTILL
    method against SeqKD) on the primary metric: the variance of the difference from each source, the half-width
    at this store's design, and the method seeds a ±``target`` interval needs at one teacher and at three."""
    rows, data = [], []
    for task in sorted(set(summary.loc[summary["profile"] == profile, "task"]), key=lambda t: order_key(t, TASKS)):
        info = store.task_info(task, profile)
        metric = info.primary
        rows_of_task = task_rows(summary, task, profile, metric)
        pairs = [(m, "mle") for m in ("predistill", *KD_METHODS)] + [(m, "seqkd") for m in F_DISTILL]
        for a, b in pairs:
            if a not in rows_of_task or b not in rows_of_task:
                continue
            c = contrast_components(store, summary, task, profile, a, b, metric, n_samples, rows_of_task)
            if c is None or not math.isfinite(c.seed):
                continue
            n = max(c.runs // (2 * c.teachers), 1)
            now = half_width(c, c.teachers, n) if n >= 2 else math.nan
            # a test split twice as large: the input parts halve (per-input noise), nothing is retrained
            doubled = half_width(replace(c, input_shared=c.input_shared / 2, input_teacher=c.input_teacher / 2),
                                 c.teachers, n) if n >= 2 else math.nan
            need = {k: seeds_needed(c, k, target) for k in (1, 3)}
            rows.append([Cell(text=task), Cell(text=f"{a} − {b}"), Cell(text=metric_label(metric, info.lower_is_better)),
                         Cell(text=f"{c.teachers} × {n}"), Cell(text=_sd(math.sqrt(c.teacher) if math.isfinite(c.teacher) else math.nan)),
                         Cell(text=_sd(math.sqrt(c.seed))), Cell(text=_sd(math.sqrt(c.input_shared) if math.isfinite(c.input_shared) else math.nan)),
                         Cell(text=_sd(now)), Cell(text=_sd(doubled)),
                         *[Cell(text=str(need[k]) if need[k] else "—") for k in (1, 3)]])
            data.append({"task": task, "profile": profile, "comparison": f"{a} - {b}", "a": a, "b": b,
                         "metric": metric, "teachers": c.teachers, "seeds": n, "var_teacher": c.teacher,
                         "var_seed": c.seed, "var_input_shared": c.input_shared, "half_width": now,
                         "half_width_double_inputs": doubled,
                         "target": target, **{f"seeds_needed_{k}_teacher{'s' if k > 1 else ''}":
                                             math.nan if need[k] is None else need[k] for k in (1, 3)}})
    if not rows:
        return None
    caption = (f"The paper's Table 2 comparisons on the primary metric: the variance of the difference of two means "
               "from each source, as standard deviations (harness/reporting/variance.py, contrast): teacher — how much "
               "the difference moves between upstream seeds (— with one teacher); seed — both models' method-seed "
               "parts; inputs — what the two share on the same test inputs (their common difficulty cancels). ±95% "
               "now: the half-width at this store's design (K teachers × n seeds per model); at 2× inputs: the "
               "same with a test split twice as large (the input parts halved; a larger twin test split re-evaluates "
               "every model and retrains none); seeds for ±"
               f"{target:g}: the fewest method seeds per model and teacher that reach it at one teacher (a verdict for "
               "that teacher, t with 2(n − 1) degrees of freedom) and over three teachers (the teacher part in, t "
               "with 2 degrees of freedom); — : none up to 100 (more teachers or a larger test set, not more seeds), "
               "or the teacher part is not measured.")
    return Table(f"variance_comparisons_{profile}", f"The variance of the Table 2 comparisons ({profile} profile)",
                 ["task", "comparison", "metric", "K × n", "teacher", "seed", "inputs", "±95% now", "±95% at 2× inputs",
                  f"seeds for ±{target:g} (1 teacher)", f"seeds for ±{target:g} (3 teachers)"], rows, caption,
                 pd.DataFrame(data))


def variance_table(store: Store, summary: pd.DataFrame, profile: str, n_samples: int = 1000) -> Table | None:
    """Per task and model of the paper's tables (and any other, after them): the sources of its primary metric's
    variance, as standard deviations in the metric's points; None where no model has two runs."""
    rows, data = [], []
    for task in sorted(set(summary.loc[summary["profile"] == profile, "task"]), key=lambda t: order_key(t, TASKS)):
        info = store.task_info(task, profile)
        metric = info.primary
        rows_of_task = task_rows(summary, task, profile, metric)
        for model in sorted(rows_of_task, key=lambda m: order_key(m, MODELS)):
            data_of = model_data(store, rows_of_task, model, n_samples)
            c = None if data_of is None else estimate(*data_of)
            if c is None or (c.runs < 2 and c.decodes < 2):   # nothing varies
                continue
            sd = {k: math.sqrt(v) if math.isfinite(v) else math.nan for k, v in
                  (("teacher", c.teacher), ("seed", c.seed), ("decode", c.decode), ("input_run", c.input_run),
                   ("input_shared", c.input_shared))}
            mean_sd = math.sqrt(design_variance(c, max(c.teachers, 1), max(c.runs // max(c.teachers, 1), 1)))
            rows.append([Cell(text=task), Cell(text=model), Cell(text=metric_label(metric, info.lower_is_better)),
                         Cell(text=f"{c.teachers} × {c.runs // max(c.teachers, 1)} × {c.decodes}"),
                         *[Cell(text=_sd(sd[k])) for k in ("teacher", "seed", "decode", "input_run", "input_shared")],
                         Cell(text=_sd(mean_sd))])
            data.append({"task": task, "profile": profile, "model": model, "metric": metric, "teachers": c.teachers,
                         "runs": c.runs, "decodes": c.decodes, "inputs": c.inputs, "var_teacher": c.teacher,
                         "var_seed": c.seed, "var_decode": c.decode, "var_input_run": c.input_run,
                         "var_input_shared": c.input_shared, "sd_mean": mean_sd})
    if not rows:
        return None
    caption = ("The variance of one run's primary metric from each source, as a standard deviation in the metric's "
               "points (harness/reporting/variance.py): teacher — the upstream seed (teacher, pseudo-labels, "
               "pre-distilled student; with one run per teacher it holds the method seed's part too); seed — the "
               "method seed within a teacher (decoding noise too where a run decoded once); decode — between test "
               "decodings of one model (eval_decode_seeds; sampled decoding); inputs (run) — one run's score over "
               "bootstrap draws of the test inputs; inputs (shared) — the part every run of the model shares, which "
               "only a larger test set reduces. — : not measured (one teacher, one run, one decoding, or no per-input "
               "parts). sd of the mean: the row mean's standard deviation at this store's design "
               "(K teachers × n seeds × d decodings: teacher/K + seed/(K n) + decode/(K n d) + inputs (shared); a part "
               "not measured counts 0 — with one teacher, the teacher's part is unknown, not absent).")
    return Table(f"variance_{profile}", f"Where the variance comes from ({profile} profile)",
                 ["task", "model", "metric", "K × n × d", "teacher", "seed", "decode", "inputs (run)",
                  "inputs (shared)", "sd of the mean"], rows, caption, pd.DataFrame(data))


def _sd(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.3f}"

"""The paper's findings, re-tested: per claim and task, what the store measured and a verdict.

One function per claim of Wen et al. (2023) (:mod:`harness.paper.claims`: what each claims and names), each
returning :class:`Finding` rows; :func:`findings` lists them in :data:`CLAIMS` order as one table. A claim compares a statistic with a threshold:

* a difference of two rows' means over seeds (signed so that a positive value favours the claim, by the
  metric's direction in the store), with its 95% interval from one model of the noise
  (:mod:`~harness.reporting.noise`): seed variance and test-input variance together (a bootstrap of the test
  inputs shared by both rows, where the metric can be recomputed per input). The teacher, one model evaluated
  once and shared by every seed, is a fixed value: its seed part is 0 by design, only its inputs vary; two
  teachers of different tasks are compared as measured.
* *holds*: the interval lies above the threshold; *does not hold*: below it; *undecided*: it includes the
  threshold, or a row has fewer than :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds (exploratory: shown,
  never decided on), and the row says which.
* "as good as the best" (claim 5) is non-inferiority with a stated margin to every other KD method (one-sided
  tests against each): *equivalent*, *not equivalent* or *undecided* — overlapping intervals are no evidence of
  equivalence, and the best by mean is not near-best by being the best.

Rows of a task are taken at one setting on one data set: :func:`~harness.reporting.summary.common_rows` (each
model's row on the task's primary data set that agrees with MLE's row with the most seeds — at the reference
teacher, where MLE was trained at several — on every axis both name, the one with the most seeds), so that no
finding compares rows made on different data.
Only claims the store has data for appear.

Rows made at several teachers (upstream seeds, :func:`task_view`): a finding is judged at the reference teacher
(:func:`~harness.reporting.summary.reference_teacher`: the default upstream seed, fixed by the design, where
``--until-decided`` adds seeds), and its ``across`` verdict over teachers (the teacher a random draw,
:func:`~harness.reporting.teachers.across`) says whether it speaks for more than that teacher; per teacher, each
one's verdict on its own rows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from typing import Callable

import pandas as pd

from ..paper import KD_METHODS, TASKS, claims, order_key
from ..paper.published import published
from ..store.labels import PREDISTILL, TEACHER
from . import noise, sequential, teachers
from .compare import comparison
from .load import Store, TaskInfo
from .noise import EQUIVALENT, MIN_OWN_SEEDS, NOT_EQUIVALENT, Replicates   # noqa: F401 (claim 5's verdicts)
from .render import Cell, Table
from .stability import replicates, sampled_once
from .summary import MLE, agrees, common_rows, format_value, lookup, reference_teacher, row_label, rows_of
from .tables import metric_label, size_axes

HOLDS, FAILS, UNDECIDED = noise.HOLDS, noise.DOES_NOT_HOLD, noise.UNDECIDED


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
    #: several teachers (upstream seeds): each one's verdict on its own rows (upstream seed → verdict); the row's
    #: verdict is then the reference teacher's (:func:`~harness.reporting.summary.reference_teacher`). Empty: one.
    teachers: dict = field(default_factory=dict)
    #: several teachers: the verdict over teachers (the two-level model, :mod:`~harness.reporting.teachers`: the
    #: teacher a random draw); "" where the rows share fewer than two teachers
    across: str = ""
    #: the difference over teachers behind ``across`` and its 95% interval (a claim of one comparison; NaN for a
    #: claim judged on several parts, and where there is none)
    across_estimate: float = math.nan
    across_low: float = math.nan
    across_high: float = math.nan


@dataclass(frozen=True)
class Difference:
    estimate: float
    low: float = math.nan
    high: float = math.nan
    exact: bool = False  # two fixed values (teachers on unrelated inputs): compared as measured
    missing: str = ""    # why no verdict may be drawn from it (exploratory rows, no interval)
    model: noise.Difference | None = None   # the noise model's difference it was read from (for equivalence)
    #: rows at several teachers: upstream seed → the difference at that teacher alone
    per_teacher: dict = field(default_factory=dict)
    #: rows at several teachers: the teacher the estimate above is at (the reference teacher, or the one both rows
    #: have), and the difference over teachers (:func:`~harness.reporting.teachers.across`: the teacher a random
    #: draw) — None where the estimate above is that one, or where the rows share one teacher
    teacher: object = None
    across: "Difference | None" = None


# --------------------------------------------------------------------------- statistics
def _fixed(line: dict) -> bool:
    """A teacher evaluated once: one model shared by every seed, a fixed value here."""
    return line["model"] == TEACHER and line["n"] == 1


def _exploratory(line: dict, n: int | None = None) -> str:
    n = line["n"] if n is None else n
    unit = "decoding" if line["model"] == TEACHER else "seed"   # a teacher's replicates are its test decodings
    return f"{line['label']}: exploratory, {n} {unit}{'s' if n != 1 else ''} (< {MIN_OWN_SEEDS})"


def difference(a: dict, b: dict, rows: dict[str, Replicates] | None = None) -> Difference:
    """Mean of ``a`` − mean of ``b`` (two summary lines) with its 95% interval from the noise model
    (:func:`~harness.reporting.noise.difference`): each row's variance over its seeds, plus the test-input part
    from ``rows`` (label → :class:`~harness.reporting.noise.Replicates` on one shared bootstrap of the inputs,
    :func:`~harness.reporting.stability.replicates`) where both rows are there with bootstrap draws. The teacher
    evaluated once is one model shared by every seed: its seed part is 0 by design
    (:attr:`~harness.reporting.noise.Replicates.fixed`), only its inputs vary. A row with fewer than
    :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds is exploratory: the difference is shown (with its own
    seed variance at two seeds, none at one), no verdict is drawn from it.

    Rows at several teachers (:func:`~harness.reporting.teachers.pooled_line`): the difference at each teacher both
    rows have (``per_teacher``), and over teachers the two-level model's (:func:`~harness.reporting.teachers.across`:
    the teacher is a random draw; fewer than :data:`~harness.reporting.noise.MIN_OWN_SEEDS` teachers: exploratory).
    Where the two rows share one teacher only (a new method compared at one of the baselines' teachers), the
    difference is the one at that teacher, and its verdict speaks for that teacher. A row without teachers (made
    once for all of them) stands beside each."""
    rows = rows or {}
    if "teachers" in a or "teachers" in b:
        return _over_teachers(a, b, rows)
    ra, rb = rows.get(a["label"]), rows.get(b["label"])
    if ra is None or rb is None or ra.resampled is None or rb.resampled is None:
        # no shared input draws: each row's replicates alone (a teacher's decodings kept where ``rows`` has them)
        ra, rb = (replace(r, resampled=None) if r is not None else
                  Replicates.of(line["values"], fixed=_fixed(line)) for line, r in ((a, ra), (b, rb)))
    # rows grown by a sequential grid: the repeated interval of their last common look
    d = sequential.difference(ra, rb) if sequential.applies(ra, rb) else noise.difference(ra, rb)
    if ra.fixed and rb.fixed and d.se == 0:
        return Difference(d.estimate, exact=True, model=d)
    missing = "; ".join(_exploratory(line, r.n) for line, r in ((a, ra), (b, rb)) if r.exploratory)
    return Difference(d.estimate, d.low, d.high, missing=missing, model=d)


def _replicates_of(line: dict, rows: dict[str, Replicates]) -> Replicates:
    r = rows.get(line["label"])
    return r if r is not None else Replicates.of(line["values"], fixed=_fixed(line))


def _over_teachers(a: dict, b: dict, rows: dict[str, Replicates]) -> Difference:
    """:func:`difference` of rows at several teachers (see there)."""
    mine, theirs = a.get("teachers"), b.get("teachers")
    seeds = [t for t in (mine or theirs) if theirs is None or mine is None or t in theirs]
    pairs = {t: ((mine or {}).get(t, a), (theirs or {}).get(t, b)) for t in seeds}
    per_teacher = {t: difference(x, y, rows) for t, (x, y) in pairs.items()}
    if len(per_teacher) == 1:
        # one teacher both rows were made at (a new method compared at one of the baselines' teachers, `harness
        # compare --teachers 42`): the comparison at that teacher, which speaks for it alone; nothing to pool
        (t, d), = per_teacher.items()
        return replace(d, per_teacher=per_teacher, teacher=t)
    replicated = [(_replicates_of(x, rows), _replicates_of(y, rows)) for x, y in pairs.values()]
    if any(r.resampled is None for pair in replicated for r in pair):   # the input part from shared draws or not at all
        replicated = [tuple(Replicates.of(r.values, fixed=r.fixed) for r in pair) for pair in replicated]
    d = teachers.across(replicated)
    missing = (f"exploratory: {len(seeds)} teacher{'s' if len(seeds) != 1 else ''} (< {MIN_OWN_SEEDS})"
               if len(seeds) < MIN_OWN_SEEDS else "")
    if mine is None or theirs is None:
        # one row made once for every teacher: its mean is the same in every per-teacher difference, so their
        # spread over teachers leaves out its seed noise (the interval would be far too narrow)
        missing = (f"{(a if mine is None else b)['label']} was made once for every teacher: no verdict over "
                   f"teachers")
    over = Difference(d.estimate, d.low, d.high, missing=missing, model=d, per_teacher=per_teacher)
    reference = a.get("reference", b.get("reference"))
    if reference not in per_teacher:   # no reference teacher both rows have: the verdict is the one over teachers
        return over
    return replace(per_teacher[reference], per_teacher=per_teacher, teacher=reference, across=over)


def teacher_verdicts(parts: list[tuple[Difference, float]], test=None, merge=None) -> dict:
    """upstream seed → the verdict at that teacher of a claim that needs every part (difference, threshold) to hold
    (``merge``, default :func:`combine`, of :func:`judge` or of ``test(d, threshold)``); {} when no part has
    several teachers."""
    test, merge = test or judge, merge or combine
    out = {}
    for t in dict.fromkeys(t for d, _ in parts for t in d.per_teacher):
        # a part without rows at t leaves t undecided (a claim that needs every part is not shown there), unless
        # another part fails at t
        verdicts = [test(d.per_teacher[t], threshold) if t in d.per_teacher else
                    (UNDECIDED, f"not compared at upstream seed {format_value(t)}") for d, threshold in parts]
        out[t] = verdicts[0][0] if len(verdicts) == 1 else merge(verdicts)[0]
    return out


def across_verdict(parts: list[tuple[Difference, float]], test=None, merge=None) -> str:
    """The verdict over teachers (:attr:`Difference.across`) of a claim that needs every part (difference,
    threshold) to hold (``merge``, default :func:`combine`, of :func:`judge` or of ``test(d, threshold)``); "" when
    no part has one."""
    test, merge = test or judge, merge or combine
    if not parts or any(d.across is None for d, _ in parts):   # a part judged at one teacher only: none over them
        return ""
    verdicts = [test(d.across, threshold) for d, threshold in parts]
    return verdicts[0][0] if len(verdicts) == 1 else merge(verdicts)[0]


def better(a: dict, b: dict, lower_is_better: bool, rows: dict[str, Replicates] | None = None) -> Difference:
    """How much ``a`` is better than ``b``: a − b, or b − a for a lower-is-better metric."""
    return difference(b, a, rows) if lower_is_better else difference(a, b, rows)


def judge(d: Difference, threshold: float) -> tuple[str, str]:
    """(verdict, reason) for "the statistic exceeds ``threshold``" (:func:`~harness.reporting.noise.at_least` on
    the 95% interval)."""
    t = f"{threshold:g}"
    if d.exact:
        how = "one teacher per task: compared as measured"
        if d.estimate == threshold:
            return UNDECIDED, f"{how}, equal to {t}"
        return (HOLDS, f"{how}, above {t}") if d.estimate > threshold else (FAILS, f"{how}, below {t}")
    if d.missing:
        return UNDECIDED, d.missing
    if not (math.isfinite(d.low) and math.isfinite(d.high)):
        return UNDECIDED, "no interval"
    kind = _which_interval(d)
    if d.low > threshold:
        return HOLDS, f"interval above {t}{kind}"
    if d.high < threshold:
        return FAILS, f"interval below {t}{kind}"
    return UNDECIDED, f"interval includes {t}{kind}"


def no_worse_by(others: int):
    """The test of one part of claim 5, "no other KD method is better than the method by ``margin`` or more", for a
    method compared with ``others`` KD methods: ``test(d, margin)`` on d = method − other (positive favours the
    method) → (verdict, reason). Equivalent (this part holds) when the one-sided 95% lower bound of d lies above
    −margin; not equivalent when the one-sided upper bound at 5%/``others`` (Bonferroni: "some other method is
    better by more than the margin" is a union over the others) lies below −margin; else undecided. The claim holds
    where every part does (an intersection-union test: each part at 5% keeps the claim's error at 5%), so the method
    that is best by mean is not "equivalent" for being the best: its lead over each other method must be shown
    not to hide a deficit of the margin."""
    def test(d: Difference, margin: float) -> tuple[str, str]:
        if d.missing:
            return UNDECIDED, d.missing
        if d.model is None or not math.isfinite(d.model.se):
            return UNDECIDED, "no interval"
        low = d.model.interval(0.90)[0]                        # one-sided 95% lower bound
        high = d.model.interval(1 - 0.10 / others)[1]          # one-sided upper bound at 5%/others
        kind = _which_interval(d)
        if low > -margin:
            return EQUIVALENT, f"one-sided 95% bound {_num(low)} above −{margin:g}{kind}"
        if high < -margin:
            return NOT_EQUIVALENT, (f"better by more than {margin:g}: one-sided {100 * (1 - 0.05 / others):.4g}% "
                                    f"bound {_num(high)}{kind}")
        return UNDECIDED, f"one-sided 95% bound {_num(low)} not above −{margin:g}{kind}"
    return test


def merge_no_worse(parts: list[tuple[str, str]]) -> tuple[str, str]:
    """Claim 5's verdict from its parts (:func:`no_worse_by`): not equivalent where any part is, else undecided
    where any part is, else equivalent (its reason: every part's bound)."""
    return combine(parts, fails=NOT_EQUIVALENT, holds=EQUIVALENT, every="; ".join(dict.fromkeys(r for _, r in parts)))


def _which_interval(d: Difference) -> str:
    """" (…)": the interval a verdict was read from where it is not the fixed-n one of one teacher's rows — a
    sequential design's look, or the two-level interval over teachers (each teacher's rows at all their seeds, even
    where a sequential design grew them: the design's looks are per teacher)."""
    if d.teacher is not None:
        at = (f"at upstream seed {format_value(d.teacher)} only, the one teacher both rows have"
              if len(d.per_teacher) == 1 else
              f"at the reference teacher, upstream seed {format_value(d.teacher)}, of {len(d.per_teacher)}")
        look = f"; {d.model.look.describe()}" if d.model is not None and d.model.look is not None else ""
        return f" ({at}{look})"
    if d.model is not None and d.model.look is not None:
        return f" ({d.model.look.describe()})"
    if d.per_teacher:
        return f" (over {len(d.per_teacher)} teachers: teacher, then seed within teacher)"
    return ""


def combine(parts: list[tuple[str, str]], fails: str = FAILS, holds: str = HOLDS,
            every: str = "every part holds") -> tuple[str, str]:
    """One verdict for a claim that needs every part to hold: any part that fails (``fails``) fails it, else any
    undecided part leaves it undecided, else it holds (``holds``, with the reason ``every``)."""
    for verdict in (fails, UNDECIDED):
        reasons = [reason for v, reason in parts if v == verdict]
        if reasons:
            return verdict, "; ".join(dict.fromkeys(reasons))
    return holds, every


def _num(x: float, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    digits = 2 if abs(x) >= 0.05 or x == 0 else 3
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _interval(d: Difference, missing: str = "—") -> str:
    return f"[{_num(d.low)}, {_num(d.high)}]" if math.isfinite(d.low) else missing


def at_reference(line: dict) -> dict:
    """A row pooled over teachers as its reference teacher's row (where it has one); any other row as it is: what a
    claim that picks a row by its mean (the best KD method) reads, so that it picks at the teacher it judges at."""
    if "teachers" in line and line.get("reference") is not None:
        return line["teachers"][line["reference"]]
    return line


def _teachers(k: int) -> str:
    return f"{k} teacher" + ("" if k == 1 else "s")


def _said(line: dict) -> str:
    """A row's mean and seeds in words; a row at several teachers: at the reference teacher, and the mean over
    teachers."""
    if "teachers" in line and line.get("reference") is not None:
        one = line["teachers"][line["reference"]]
        return (f"{line['model']} {_num(one['mean'])} (n={one['n']} at upstream seed {format_value(line['reference'])}"
                f"; {_teachers(len(line['teachers']))}: mean {_num(line['mean'])}, n={line['n']})")
    over = f", {_teachers(len(line['teachers']))}" if "teachers" in line else ""
    return f"{line['model']} {_num(line['mean'])} (n={line['n']}{over})"


# --------------------------------------------------------------------------- the store, task by task
@dataclass
class View:
    """One task of one profile: its metrics, its summary lines and the row each model is read from."""

    task: str
    profile: str
    info: TaskInfo
    look: dict                  # (row label, metric) → summary line
    rows: dict[str, str]        # model → the label of its row at the common setting
    teachers: tuple = ()        # the upstream seeds its rows were made at, where several (their rows pooled)

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


def _context(store: Store, summary: pd.DataFrame, profile: str, n_samples: int, paper: pd.DataFrame) -> Context:
    """The :class:`Context` of ``profile``: a :func:`task_view` of each of its tasks, in the paper's task order."""
    tasks = sorted(set(summary.loc[summary["profile"] == profile, "task"]), key=lambda t: order_key(t, TASKS))
    return Context(store, summary, profile, {t: task_view(store, summary, t, profile) for t in tasks}, n_samples,
                   paper)


def _finding(claim, statement, view_or_task, metric, evidence, d: Difference, threshold: float) -> Finding:
    verdict, reason = judge(d, threshold)
    task = view_or_task.task if isinstance(view_or_task, View) else view_or_task
    over = d.across if d.across is not None else Difference(math.nan)
    # no interval where the difference over teachers may not be judged (fewer than 3 teachers; a row made once for
    # every teacher, whose interval leaves out that row's seed noise)
    low, high = (math.nan, math.nan) if over.missing else (over.low, over.high)
    return Finding(claim, statement, task, metric, evidence, d.estimate, d.low, d.high, threshold, verdict, reason,
                   teacher_verdicts([(d, threshold)]), across_verdict([(d, threshold)]), over.estimate, low, high)


def _noise(ctx: Context, lines: dict[str, dict], decodings: bool = False) -> dict[str, Replicates]:
    """The rows ``lines`` (label → summary line of one metric, one task) as the noise model's replicates, on one
    shared bootstrap of their test inputs (kept on the store: every claim of a task reads the same draws). A row at
    several teachers stands for its rows at each (:func:`~harness.reporting.teachers.pooled_line`): those are
    drawn, on the same draws as the rest. Rows grown by a sequential grid carry its design (their intervals are
    the look's, :mod:`~harness.reporting.sequential`)."""
    plain = {}
    for label, line in lines.items():
        plain.update({one["label"]: one for one in line["teachers"].values()} if "teachers" in line else {label: line})
    if not plain:
        return {}
    return sequential.mark(ctx.store.root, plain, replicates(ctx.store, plain, ctx.n_samples, decodings=decodings))


def _common(ctx: Context, view: View, metric: str) -> dict[str, Replicates]:
    """:func:`_noise` of every common row of ``view`` that holds ``metric``."""
    lines = {view.rows[m]: view.line(m, metric) for m in view.rows if view.line(m, metric) is not None}
    return _noise(ctx, lines)


def _versus(ctx: Context, claim: str, view: View, model: str, baseline: str, metric: str, threshold: float = 0.0,
            statement: str | None = None) -> Finding | None:
    """``model`` ≥ ``baseline`` (+ threshold) on ``metric``, or None if either row lacks it."""
    a, b = view.line(model, metric), view.line(baseline, metric)
    if a is None or b is None:
        return None
    d = better(a, b, view.lower(metric), _common(ctx, view, metric))
    arrow = "≤" if view.lower(metric) else "≥"
    plus = f" {'−' if view.lower(metric) else '+'} {threshold:g}" if threshold else ""
    statement = statement or f"{model} {arrow} {baseline}{plus} ({view.label(metric)})"
    return _finding(claim, statement, view, metric, f"{_said(a)} vs {_said(b)}", d, threshold)


# --------------------------------------------------------------------------- the claims
def pre_distillation(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.PREDISTILL_VS_MLE`."""
    rows = [_versus(ctx, claims.PREDISTILL_VS_MLE.number, v, PREDISTILL, MLE, v.info.primary) for v in ctx.views.values()]
    return [r for r in rows if r]


def kd_methods(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.KD_VS_MLE`."""
    rows = [_versus(ctx, claims.KD_VS_MLE.number, v, m, MLE, v.info.primary) for v in ctx.views.values() for m in KD_METHODS]
    return [r for r in rows if r]


def teacher_dist_order(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.TEACHER_DIST_RISES`: one row per neighbouring pair of the tasks present, then
    the whole order. Each teacher's TeacherDist is the mean over its test inputs of a per-input term computed from
    that input's own teacher samples: a bootstrap of its inputs (its own draws, independent of the other task's:
    other inputs, another teacher) carries the noise of the inputs and of the samples together (the terms are
    independent across inputs, so the between-input variance of the terms holds the within-input sampling
    variance too). Without per-input terms in the store (evaluations made before they were recorded) no interval:
    undecided."""
    metric, number, order = "teacher_dist", claims.TEACHER_DIST_RISES.number, claims.TEACHER_DIST_ORDER
    lines = {t: ctx.views[t].line(TEACHER, metric) for t in order if t in ctx.views}
    lines = {t: line for t, line in lines.items() if line is not None}
    present = list(lines)
    if len(present) < 2:
        return []
    noise_rows = {t: _task_teacher(ctx, lines[t], stream=1 + order.index(t)) for t in present}
    rows = []
    for low, high in zip(present, present[1:]):
        d = teacher_dist_difference(noise_rows[high], noise_rows[low])
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


#: why a TeacherDist comparison has no interval in a store without per-input terms
NO_TEACHER_DIST_TERMS = ("no per-input TeacherDist terms in the store (evaluations made before they were recorded): "
                         "its noise over inputs and teacher samples is unknown")


def _task_teacher(ctx: Context, line: dict, stream: int) -> Replicates:
    """A task's teacher as the noise model's row, on its own input draws (``stream``): one teacher fixed; several
    (upstream seeds) as one row whose replicates are the teachers (:func:`~harness.reporting.teachers.teacher_level`:
    nothing pairs two tasks' teachers)."""
    if "teachers" not in line:
        return replicates(ctx.store, {line["label"]: line}, ctx.n_samples, stream=stream)[line["label"]]
    lines = {one["label"]: one for one in line["teachers"].values()}
    rows = replicates(ctx.store, lines, ctx.n_samples, stream=stream)
    return teachers.teacher_level([rows[label] for label in lines])


def teacher_dist_difference(high: Replicates, low: Replicates) -> Difference:
    """TeacherDist of one teacher − another's, with the 95% interval of two independent input bootstraps (each
    teacher fixed: one model, its inputs and samples vary); :data:`NO_TEACHER_DIST_TERMS` without draws. Several
    teachers per task (:func:`_task_teacher`): their variance over teachers joins in; fewer than
    :data:`~harness.reporting.noise.MIN_OWN_SEEDS` of them is exploratory."""
    d = noise.difference(high, low)
    if high.resampled is None or low.resampled is None:
        return Difference(d.estimate, missing=NO_TEACHER_DIST_TERMS, model=d)
    if d.exploratory:
        return Difference(d.estimate, d.low, d.high, model=d, missing=f"exploratory: fewer than {MIN_OWN_SEEDS} "
                          f"teachers on a side ({d.n_a} and {d.n_b})")
    return Difference(d.estimate, d.low, d.high, model=d)


def dialogue_teacher(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.DIALOGUE_TEACHER_LEAD`. The dialogue teacher's test decoding samples, so its
    score carries decoding noise. Each input's sample is drawn independently, so a bootstrap of the inputs carries
    that noise with the inputs' (one decoding is not exact, as long as the metric is recomputed per input); where
    its evaluation decoded the test inputs several times (``eval_decode_seeds``), those decodings are its
    replicates instead (decoding seeds as seeds: their mean halves the decoding noise at four, and the noise model
    takes the seed-by-input part out of the input part, :mod:`~harness.reporting.noise`). One decoding of a metric
    that cannot be recomputed per input has no measure of its decoding noise: undecided."""
    view = ctx.views.get(claims.DIALOGUE_TASK)
    metric = claims.DIALOGUE_METRIC
    a, b = (view.line(TEACHER, metric), view.line(MLE, metric)) if view else (None, None)
    if a is None or b is None:
        return []
    rows = _noise(ctx, {a["label"]: a, b["label"]: b}, decodings=True)
    d = better(a, b, view.lower(metric), rows)
    once = [one for one in a.get("teachers", {a["label"]: a}).values()
            if sampled_once(ctx.store, one) and rows[one["label"]].resampled is None]
    if once:
        d = replace(d, missing=f"{a['label']}: its sampled score is one decoding of a "
                    f"metric not recomputed per input: its decoding noise is not measured (eval_decode_seeds ≥ "
                    f"{MIN_OWN_SEEDS} measures it)")
    statement = (f"{TEACHER} ≥ {MLE} + {claims.DIALOGUE_MARGIN:g} ({view.label(metric)})")
    teacher = rows.get(a["label"])
    said = (f"{a['model']} {_num(teacher.mean)} (mean of {teacher.n} decodings)" if teacher is not None and teacher.n > 1
            else _said(a))
    evidence = f"{said} vs {_said(b)}"
    return [_finding(claims.DIALOGUE_TEACHER_LEAD.number, statement, view, metric, evidence, d,
                     claims.DIALOGUE_MARGIN)]


def coverage_risk(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.KL_COVERAGE`."""
    lower, higher = claims.LOWER_COVERAGE_RISK, claims.HIGHER_COVERAGE_RISK
    rows = [_versus(ctx, claims.KL_COVERAGE.number, v, lower, higher, "r_cvg", statement=f"{lower}'s R_cvg below {higher}'s")
            for v in ctx.views.values()]
    return [r for r in rows if r]


def near_best(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.SYMMETRIC_NEAR_BEST`, "best or near-best", as non-inferiority to every other KD
    method: no KD method (among those with at least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds at the
    reference teacher) is better than the method by the margin :data:`~harness.paper.claims.NEAR_BEST_MARGIN` or
    more — one one-sided test per other method (:func:`no_worse_by`), the claim holding where every one does
    (:func:`merge_no_worse`): equivalent, not equivalent or undecided. Each difference is signed so that positive
    favours the method, under the noise model. Δ and its 95% interval: against the best other method by mean (the
    closest part). Comparing with every other method, not only with the best by mean, keeps the best by mean from
    counting as near-best by selection alone, and overlapping intervals decide nothing."""
    rows = []
    margin = claims.NEAR_BEST_MARGIN
    for view in ctx.views.values():
        metric = view.info.primary
        kd = {m: view.line(m, metric) for m in KD_METHODS if view.line(m, metric) is not None}
        confirmed = [m for m, line in kd.items() if at_reference(line)["n"] >= MIN_OWN_SEEDS]
        if not kd:
            continue
        noise_rows = _common(ctx, view, metric)
        for m in claims.NEAR_BEST:
            if m not in kd:
                continue
            line = kd[m]
            statement = (f"{m} as good as the best KD method: none better by {margin:g} or more "
                         f"({view.label(metric)}; one-sided tests against each)")
            others = [o for o in confirmed if o != m]
            if not others:
                rows.append(Finding(claims.SYMMETRIC_NEAR_BEST.number, statement, view.task, metric,
                                    f"{_said(line)}; no other KD method with {MIN_OWN_SEEDS} seeds", math.nan,
                                    math.nan, math.nan, margin, UNDECIDED,
                                    f"nothing to compare with: every other KD method is exploratory "
                                    f"(< {MIN_OWN_SEEDS} seeds)"))
                continue
            parts = {o: better(line, kd[o], view.lower(metric), noise_rows) for o in others}
            test = no_worse_by(len(parts))
            verdict, reason = merge_no_worse([(v, f"vs {o}: {r}") for o, (v, r) in
                                              ((o, test(d, margin)) for o, d in parts.items())])
            closest = min(parts, key=lambda o: parts[o].estimate)
            d = parts[closest]
            rows.append(Finding(claims.SYMMETRIC_NEAR_BEST.number, statement, view.task, metric,
                                f"{_said(line)} vs the best other {_said(kd[closest])}",
                                d.estimate, d.low, d.high, margin, verdict, reason,
                                teacher_verdicts([(p, margin) for p in parts.values()], test, merge_no_worse),
                                across_verdict([(p, margin) for p in parts.values()], test, merge_no_worse)))
    return rows


def kendall_agreement(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.KD_ORDER`: τ and its interval as the paper comparison computes them."""
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
            low, high = float(r["kendall_tau_ci_low"]), float(r["kendall_tau_ci_high"])
            d = Difference(tau, low, high, missing="" if math.isfinite(low) else
                           f"no interval: a KD method is exploratory (< {MIN_OWN_SEEDS} seeds)")
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


def _series_noise(ctx: Context, series: dict) -> dict[str, Replicates]:
    """:func:`_noise` of every row of a task's depth series."""
    return _noise(ctx, {line["label"]: line for _, by_depth in series.values() for line in by_depth.values()})


def depth_trend(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.DEPTH_TREND`."""
    rows = []
    for view, series, metric in _depth_views(ctx):
        noise_rows = _series_noise(ctx, series)
        for (model, name), (other, by_depth) in series.items():
            depths = sorted(by_depth)
            steps = [(a, b, better(by_depth[b], by_depth[a], view.lower(metric), noise_rows))
                     for a, b in zip(depths, depths[1:])]
            verdict, reason = combine([judge(d, 0.0) for _, _, d in steps])
            evidence = "; ".join(f"{a:g}→{b:g}: {_num(d.estimate, True)} {_interval(d, '(no interval)')}"
                                 for a, b, d in steps)
            statement = f"{name}: {view.label(metric)} rises with encoder depth"
            rows.append(Finding(claims.DEPTH_TREND.number, statement, view.task, metric, evidence, math.nan, math.nan,
                                math.nan, 0.0, verdict, reason))
    return rows


def ahead_of_seqkd(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.AHEAD_OF_SEQKD`: the interval of each depth's difference (whether the two rows'
    own intervals overlap says nothing about their difference, so it is not shown)."""
    rows = []
    for view, series, metric in _depth_views(ctx):
        noise_rows = _series_noise(ctx, series)
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
                d = better(mine, theirs, view.lower(metric), noise_rows)
                parts.append(judge(d, 0.0))
                words.append(f"{depth:g}: {_num(d.estimate, True)} {_interval(d, '(no interval)')}")
            verdict, reason = combine(parts)
            statement = f"{name} ahead of {claims.SEQKD} at every encoder depth"
            rows.append(Finding(claims.AHEAD_OF_SEQKD.number, statement, view.task, metric, "; ".join(words),
                                math.nan, math.nan, math.nan, 0.0, verdict, reason))
    return rows


def _paper_gap(ctx: Context, view: View, model: str, baseline: str, metric: str) -> str:
    """", paper ±x.xx": how much ``model`` is better than ``baseline`` in the paper's Table 2 or 3 on ``metric``
    (the metric's direction as the store records it), "" where the paper has no such pair."""
    pub = ctx.paper[(ctx.paper["task"] == view.task) & ctx.paper["table"].isin(["table2", "table3"])
                    & (ctx.paper["setting"] == "") & (ctx.paper["metric"] == metric)]
    value = dict(zip(pub["model"], pub["value"]))
    if model not in value or baseline not in value:
        return ""
    gap = value[model] - value[baseline]
    return f"; paper {_num(-gap if view.lower(metric) else gap, True)}"


def f_distill_vs_seqkd(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.F_DISTILL_VS_SEQKD`: per task, each f-DISTILL variant against SeqKD on the
    primary metric (holds: the 95% interval of the difference above 0), then the best of them. "The best" is
    chosen by our means, so its own interval would be judged on the data that chose it (the winner's curse):
    instead it holds where some variant's interval at the Bonferroni level 1 − 0.05/k (k variants present) lies
    above 0 — at least one variant beats SeqKD, with a family-wise error of 5% one-sided 2.5% — and does not hold
    where every variant's 95% interval lies below 0 (an intersection-union test: none beats it). Its Δ is the
    best-by-mean variant's, its interval that variant's Bonferroni interval."""
    rows, number = [], claims.F_DISTILL_VS_SEQKD.number
    for view in ctx.views.values():
        metric = view.info.primary
        base = view.line(claims.SEQKD, metric)
        present = [m for m in claims.F_DISTILL if view.line(m, metric) is not None]
        if base is None or not present:
            continue
        noise_rows = _common(ctx, view, metric)
        diffs = {}
        for m in present:
            line = view.line(m, metric)
            diffs[m] = d = better(line, base, view.lower(metric), noise_rows)
            statement = f"{m} beats {claims.SEQKD} ({view.label(metric)})"
            evidence = f"{_said(line)} vs {_said(base)}{_paper_gap(ctx, view, m, claims.SEQKD, metric)}"
            rows.append(_finding(number, statement, view, metric, evidence, d, 0.0))
        rows.append(_best_of(number, view, metric, diffs))
    return rows


def _bonferroni(d: Difference, k: int) -> tuple[float, float]:
    if d.missing or d.model is None:
        return math.nan, math.nan
    return d.model.interval(1 - 0.05 / k)


def _best_verdict(diffs: dict[str, Difference]) -> tuple[str, str]:
    """:func:`f_distill_vs_seqkd`'s verdict on "the best variant beats the baseline" from each variant's
    difference (see there)."""
    k = len(diffs)
    above = [m for m, d in diffs.items() if _bonferroni(d, k)[0] > 0]
    if above:
        return HOLDS, f"{', '.join(above)}: Bonferroni interval ({k} variants) above 0{_which_interval(diffs[above[0]])}"
    verdicts = {m: judge(d, 0.0) for m, d in diffs.items()}
    if all(v == FAILS for v, _ in verdicts.values()):
        return FAILS, "every variant's interval below 0"
    open_ = [f"{m}: {reason}" for m, (v, reason) in verdicts.items() if v != FAILS]
    return UNDECIDED, f"no Bonferroni interval ({k} variants) above 0; " + "; ".join(open_)


def _best_of(number: str, view: View, metric: str, diffs: dict[str, Difference]) -> Finding:
    best = max(diffs, key=lambda m: diffs[m].estimate)
    k = len(diffs)
    low, high = _bonferroni(diffs[best], k)
    verdict, reason = _best_verdict(diffs)
    per_teacher = {}
    for t in dict.fromkeys(t for d in diffs.values() for t in d.per_teacher):
        per_teacher[t] = _best_verdict({m: d.per_teacher[t] for m, d in diffs.items() if t in d.per_teacher})[0]
    overs = {m: d.across for m, d in diffs.items() if d.across is not None}
    across = _best_verdict(overs)[0] if overs and len(overs) == len(diffs) else ""
    evidence = (f"best by mean: {best}; {100 * (1 - 0.05 / k):.4g}% intervals: "
                + "; ".join(f"{m} {_num(d.estimate, True)} {_interval(Difference(d.estimate, *_bonferroni(d, k)))}"
                            for m, d in diffs.items()))
    statement = f"the {claims.BEST_OF} ({', '.join(diffs)}) beats {claims.SEQKD} ({view.label(metric)})"
    return Finding(number, statement, view.task, metric, evidence, diffs[best].estimate, low, high, 0.0, verdict,
                   reason, per_teacher, across)


def kl_rkl_by_entropy(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.KL_VS_RKL_BY_ENTROPY`: on each task of
    :data:`~harness.paper.claims.BY_ENTROPY`, the method said to be ahead against the other, primary metric."""
    rows = []
    for task, ahead, behind in claims.BY_ENTROPY:
        view = ctx.views.get(task)
        if view is None:
            continue
        metric = view.info.primary
        found = _versus(ctx, claims.KL_VS_RKL_BY_ENTROPY.number, view, ahead, behind, metric,
                        statement=f"{ahead} beats {behind} ({view.label(metric)})")
        if found is not None:
            gap = _paper_gap(ctx, view, ahead, behind, metric)
            rows.append(dataclasses.replace(found, evidence=found.evidence + gap))
    return rows


def dialogue_risks(ctx: Context) -> list[Finding]:
    """:data:`~harness.paper.claims.DIALOGUE_RISKS`: per risk of :data:`~harness.paper.claims.LOWEST_RISK`, the
    method said to have the lowest against every other f-DISTILL method present (the risk's direction as the store
    records it): holds when every one of its differences holds, does not hold when any is below 0."""
    view = ctx.views.get(claims.DIALOGUE_TASK)
    if view is None:
        return []
    rows = []
    for risk, lowest in claims.LOWEST_RISK:
        line = view.line(lowest, risk)
        others = {m: view.line(m, risk) for m in claims.F_DISTILL if m != lowest and view.line(m, risk) is not None}
        if line is None or not others:
            continue
        noise_rows = _common(ctx, view, risk)
        diffs = {m: better(line, other, view.lower(risk), noise_rows) for m, other in others.items()}
        parts = [(d, 0.0) for d in diffs.values()]
        verdict, reason = combine([judge(d, threshold) for d, threshold in parts])
        label = view.label(risk)
        evidence = f"{_said(line)}; " + "; ".join(
            f"vs {m} {_num(others[m]['mean'])}: {_num(d.estimate, True)} {_interval(d, '(no interval)')}"
            for m, d in diffs.items())
        closest = min(diffs, key=lambda m: diffs[m].estimate)
        d = diffs[closest]
        rows.append(Finding(claims.DIALOGUE_RISKS.number,
                            f"{lowest} has the lowest {label} of {', '.join([lowest, *others])}", view.task, risk,
                            evidence, d.estimate, d.low, d.high, 0.0, verdict, reason, teacher_verdicts(parts),
                            across_verdict(parts)))
    return rows


CLAIMS: tuple[Callable[[Context], list[Finding]], ...] = (
    pre_distillation, kd_methods, teacher_dist_order, dialogue_teacher, coverage_risk, near_best,
    kendall_agreement, depth_trend, ahead_of_seqkd, f_distill_vs_seqkd, kl_rkl_by_entropy, dialogue_risks)


# --------------------------------------------------------------------------- the table
def findings(store: Store, summary: pd.DataFrame, profile: str, n_samples: int = 1000,
             paper: pd.DataFrame | None = None) -> Table | None:
    """Every claim's rows for the tasks of ``profile``, as one table (None when no claim has data)."""
    ctx = _context(store, summary, profile, n_samples, published() if paper is None else paper)
    found = [row for claim in CLAIMS for row in claim(ctx)]
    if not found:
        return None
    several = any(f.teachers for f in found)
    rows = [[Cell(text=f.claim), Cell(text=f.statement), Cell(text=f.task), Cell(text=f.evidence),
             Cell(text=_num(f.estimate, True)), Cell(text=_interval(Difference(f.estimate, f.low, f.high))),
             Cell(text=f.verdict), *([Cell(text=_across_text(f))] if several else []), Cell(text=f.reason)]
            for f in found]
    data = pd.DataFrame([{"claim": f.claim, "statement": f.statement, "task": f.task, "profile": profile,
                          "metric": f.metric, "evidence": f.evidence, "estimate": f.estimate, "ci_low": f.low,
                          "ci_high": f.high, "threshold": f.threshold, "verdict": f.verdict, "reason": f.reason,
                          **({"teachers": len(f.teachers), "teachers_holding": _holding(f),
                              "across_verdict": f.across, "across_estimate": f.across_estimate,
                              "across_low": f.across_low, "across_high": f.across_high,
                              "per_teacher": "; ".join(f"{format_value(t)}: {v}" for t, v in f.teachers.items())}
                             if several else {})}
                         for f in found])
    caption = ("Δ: the statistic the claim is judged on, signed so that a positive value favours the claim (the "
               "metric's direction as the store records it): a difference of means over seeds, or Kendall τ. "
               "95% interval: one model of seed and test-input noise — each row's variance over its seeds plus a "
               f"bootstrap of the test inputs shared by both rows ({n_samples} draws, less the seed-by-input part "
               "counted twice), Satterthwaite degrees of freedom; the teacher, one model shared by every seed, has "
               "no seed part (two teachers of different tasks are compared as measured); τ's interval: bounds of τ "
               "over the orders that keep the pairs of means the same model's draws settle simultaneously (a "
               "step-down max-t band; at least 95% under that model, conservative). holds: the interval lies above the "
               "threshold; does not hold: below it; undecided: it includes the threshold, or a row has fewer than "
               f"{MIN_OWN_SEEDS} seeds (exploratory: shown, never decided on). 3a: each teacher's TeacherDist from a "
               "bootstrap of its own test inputs' per-input terms (the noise of the inputs and of the teacher's "
               "samples together; two teachers independent), undecided where the store has no per-input terms. 3b: "
               "a teacher whose evaluation decoded its sampled outputs several times (eval_decode_seeds) has those "
               "decodings as its replicates. 5: non-inferiority to every other KD method ("
               + ", ".join(KD_METHODS) + f" with at least {MIN_OWN_SEEDS} seeds) with the margin "
               f"{claims.NEAR_BEST_MARGIN:g}: equivalent when, against each, the one-sided 95% lower bound of the "
               f"method's difference lies above −{claims.NEAR_BEST_MARGIN:g} (being the best by mean is not enough); "
               "not equivalent when some method is better by more than the margin (its one-sided bound at 5%/k, k "
               "methods compared, below it); undecided otherwise (Δ: against the best other by mean). 6b, 6c "
               "(Figure 2, when the student's encoder depth varies): every step, every depth must hold. Rows of a "
               "task are those at the setting of MLE's row with the most seeds (among those at the reference teacher, "
               "where MLE was trained at several), on the task's primary data set. "
               "7: each f-DISTILL variant against SeqKD; its best holds where one variant's Bonferroni interval lies "
               "above 0 and does not hold where every variant's 95% interval lies below 0 (Δ: the best by mean, with "
               "its Bonferroni interval). 8, 9: every part must hold (9's Δ: the closest of its comparisons)."
               + (" Several teachers (upstream seeds): the comparisons of two rows (1, 2, 3b, 4, 5, 7–9) have their "
                  "Δ, interval and verdict at the reference teacher "
                  "(the profile's default upstream seed, where single-teacher grids and the seeds-until-decided "
                  "rounds run; two rows that share one teacher only: at that one), and 'across teachers' gives the "
                  "verdict over teachers (with its Δ and 95% interval where the claim is one comparison) — the mean "
                  "of the per-teacher differences, its variance their variance "
                  "over teachers divided by their number (teacher, then seed within teacher: it holds the "
                  "between-teacher variance and every within-teacher part) plus the test inputs' part shared by "
                  f"every teacher; fewer than {MIN_OWN_SEEDS} teachers: undecided (exploratory) — then in how many "
                  "teachers the claim holds (or is equivalent) on that teacher's rows alone." if several else ""))
    header = ["#", "claim", "task", "evidence", "Δ", "95% interval", "verdict",
              *(["across teachers"] if several else []), "why"]
    return Table(f"findings_{profile}", f"The paper's findings, re-tested ({profile} profile)", header, rows,
                 caption, data)


#: The verdict words in the order a summary counts them, and those that decide a row.
VERDICTS = (HOLDS, EQUIVALENT, FAILS, NOT_EQUIVALENT, UNDECIDED)
DECIDED = frozenset({HOLDS, EQUIVALENT, FAILS, NOT_EQUIVALENT})
#: The column of :func:`verdict_counts` that counts the rows whose verdict over teachers holds (or is equivalent).
HOLDS_ACROSS = "holds across teachers"


def ordered_verdicts(words) -> list[str]:
    """The verdict words present in ``words``, in :data:`VERDICTS`' order, any other word after them."""
    present = list(dict.fromkeys(str(w) for w in words))
    return [v for v in VERDICTS if v in present] + [v for v in present if v not in VERDICTS]


def verdict_counts(frame: pd.DataFrame, total: bool = False) -> pd.DataFrame:
    """Per claim of a findings table (its ``data`` or its CSV), in the table's order: ``rows``, the count of each
    verdict it has (:func:`ordered_verdicts`), ``decided`` (the rows with a verdict of :data:`DECIDED`) and, where
    the table has verdicts over teachers, :data:`HOLDS_ACROSS`; ``total``: then a row ``all``."""
    verdicts = frame["verdict"].astype(str)
    kinds = ordered_verdicts(verdicts)
    out = []
    for claim, part in frame.groupby(frame["claim"].astype(str), sort=False, dropna=False):
        said = verdicts[part.index]
        line = {"claim": claim, "rows": len(part), **{k: int((said == k).sum()) for k in kinds},
                "decided": int(said.isin(DECIDED).sum())}
        if "across_verdict" in part:
            line[HOLDS_ACROSS] = int(part["across_verdict"].isin([HOLDS, EQUIVALENT]).sum())
        out.append(line)
    counts = pd.DataFrame(out, columns=["claim", "rows", *kinds, "decided",
                                        *([HOLDS_ACROSS] if "across_verdict" in frame else [])])
    if total:
        counts = pd.concat([counts, pd.DataFrame([{"claim": "all", **counts.drop(columns="claim").sum()}])],
                           ignore_index=True)
    return counts


def verdict_summary(table: Table, profile: str) -> Table:
    """What the findings table (``table``, :func:`findings`) decided, per claim and in all: the table a reader
    sees first."""
    counts = verdict_counts(table.data, total=True)
    columns = [c for c in counts.columns if c != "claim"]
    rows = [[Cell(text=line["claim"]), Cell(text=claims.text_of(line["claim"])),
             *(Cell(text=str(int(line[k]))) for k in columns)] for _, line in counts.iterrows()]
    every = counts.iloc[-1]
    share = f" ({100 * every['decided'] / every['rows']:.0f}%)" if every["rows"] else ""
    data = counts.copy()
    data.insert(1, "text", [claims.text_of(c) for c in data["claim"]])
    data.insert(2, "profile", profile)
    caption = (f"Decided (holds, does not hold, equivalent or not equivalent): {int(every['decided'])} of "
               f"{int(every['rows'])} rows{share}. Each row of the findings table is one 95% statement on its own; "
               f"a row with fewer than {MIN_OWN_SEEDS} seeds is undecided (exploratory)."
               + (f" {HOLDS_ACROSS}: the rows whose verdict over teachers holds (or is equivalent)."
                  if HOLDS_ACROSS in counts else ""))
    return Table(f"verdicts_{profile}", f"What the findings decide ({profile} profile)", ["#", "claim", *columns],
                 rows, caption, data)


def _holding(f: Finding) -> int:
    return sum(v in (HOLDS, EQUIVALENT) for v in f.teachers.values())


def _across_text(f: Finding) -> str:
    """The verdict over teachers and "k of K": the teachers at which the claim holds (or is equivalent) on their
    own rows; "—" for one."""
    if not f.teachers:
        return "—"
    tally = f"{_holding(f)} of {len(f.teachers)}"
    if not f.across:
        return tally
    over = f" {_num(f.across_estimate, True)}" if math.isfinite(f.across_estimate) else ""
    if math.isfinite(f.across_low):
        over += f" {_interval(Difference(f.across_estimate, f.across_low, f.across_high))}"
    return f"{f.across}{over}; {tally}"


#: What a comparison of a new method with a baseline says, from :func:`judge`'s verdict on "new − baseline > 0".
BETTER, WORSE = "better", "worse"


def versus_baselines(store: Store, summary: pd.DataFrame, profile: str, method: str,
                     n_samples: int = 1000) -> Table | None:
    """``method`` (a new method, ``harness compare``'s) against every other student of each task of ``profile``,
    on the task's primary metric: its difference from each baseline (positive: ``method`` better, in the metric's
    direction) with the noise model's 95% interval (:func:`difference`: at the one teacher both rows share where
    the baselines were made at several), and the verdict better / worse / undecided (the interval above 0, below
    it, or including it; exploratory rows, fewer than :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds, are
    never decided). Each comparison is a 95% statement on its own. None where ``method`` has no row."""
    ctx = _context(store, summary, profile, n_samples, pd.DataFrame())
    found = []
    for view in ctx.views.values():
        metric = view.info.primary
        mine = view.line(method, metric)
        if mine is None:
            continue
        noise_rows = _common(ctx, view, metric)
        for model in view.rows:
            line = view.line(model, metric)
            if model in (method, TEACHER) or line is None:
                continue
            d = better(mine, line, view.lower(metric), noise_rows)
            verdict, reason = judge(d, 0.0)
            word = {HOLDS: BETTER, FAILS: WORSE}.get(verdict, UNDECIDED)
            found.append(Finding("", f"{method} vs {model} ({view.label(metric)})", view.task, metric,
                                 f"{_said(mine)} vs {_said(line)}", d.estimate, d.low, d.high, 0.0, word, reason))
    if not found:
        return None
    rows = [[Cell(text=f.task), Cell(text=f.statement), Cell(text=f.evidence), Cell(text=_num(f.estimate, True)),
             Cell(text=_interval(Difference(f.estimate, f.low, f.high))), Cell(text=f.verdict), Cell(text=f.reason)]
            for f in found]
    data = pd.DataFrame([{"task": f.task, "profile": profile, "method": method, "baseline": f.statement,
                          "metric": f.metric, "evidence": f.evidence, "estimate": f.estimate, "ci_low": f.low,
                          "ci_high": f.high, "verdict": f.verdict, "reason": f.reason} for f in found])
    counts = ", ".join(f"{sum(f.verdict == v for f in found)} {v}" for v in (BETTER, WORSE, UNDECIDED))
    caption = (f"{method} against each baseline on each task's primary metric: Δ = {method} − baseline (baseline − "
               f"{method} for a metric where lower is better), positive when {method} is better; 95% interval from "
               f"the same noise model as the findings (seeds and test inputs); better / worse: the interval above / below 0; undecided: it "
               f"includes 0, or a row has fewer than {MIN_OWN_SEEDS} seeds. Each comparison is a 95% statement on "
               f"its own: across the {len(found)} here, some verdicts are expected by chance ({counts}).")
    return Table(f"versus_{method}_{profile}", f"{method} against the baselines ({profile} profile)",
                 ["task", "comparison", "evidence", "Δ", "95% interval", "verdict", "why"], rows, caption, data)


def task_view(store: Store, summary: pd.DataFrame, task: str, profile: str) -> View:
    """One task's :class:`View`: each model's row at the common setting (:func:`~harness.reporting.summary.common_rows`)
    or, where its runs were made at several upstream seeds, one row per model standing for its rows at every
    teacher (:func:`~harness.reporting.teachers.pooled_line`, each teacher's row chosen among that teacher's rows
    alone), so that no claim takes runs of different teachers for plain seed replicates."""
    info, look = store.task_info(task, profile), lookup(summary, task, profile)
    by_teacher = teachers.rows_by_teacher(summary, task, profile)
    if len(by_teacher) < 2:
        return View(task, profile, info, look, common_rows(summary, task, profile))
    metrics = list(dict.fromkeys(metric for _, metric in look))
    reference = reference_teacher(by_teacher)
    rows = {}
    for model in dict.fromkeys(m for chosen in by_teacher.values() for m in chosen):
        labels = {t: chosen[model] for t, chosen in by_teacher.items() if model in chosen}
        # one row made once for every teacher (at each, the same label); a row at some teachers only (a method run
        # at one upstream seed, e.g. by `harness compare` beside baselines at three) is pooled over those alone
        if len(labels) == len(by_teacher) and len(set(labels.values())) == 1:
            rows[model] = next(iter(labels.values()))
            continue
        rows[model] = label = f"{model} [{len(labels)} teachers]"
        for metric in metrics:
            lines = {t: look[(one, metric)] for t, one in labels.items() if (one, metric) in look}
            if lines:
                look[(label, metric)] = {**teachers.pooled_line(lines, reference), "label": label}
    return View(task, profile, info, look, rows, tuple(by_teacher))

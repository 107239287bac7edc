"""Seeds until decided: a group-sequential design whose intervals stay valid when the number of seeds depends on the
data.

A comparison A − B (:mod:`~harness.reporting.noise`: seed part plus test-input part, signed so that positive
favours A) is looked at after ``n_1 < n_2 < … < n_K`` seeds per row — the design's *looks*: ``start`` seeds, then
``step`` more per round, up to ``max_seeds``. Re-reading a fixed-n 95% interval after every round and stopping as
soon as it excludes 0 declares a difference between equal rows far more often than 5% (each look is another chance
to cross). Here every look's interval is a *repeated confidence interval* (Jennison & Turnbull 1989):

    D_k ± q_k · se_k,      q_k = t⁻¹_{ν_k}(Φ(c_k))

with ``c_1 ≤ …`` one-sided normal boundaries fixed before any data, from a Lan–DeMets (1983) α-spending function
``a(t)`` over the planned information fractions ``t_k = n_k / n_K``:

    P₀(Z_1 < c_1, …, Z_{k−1} < c_{k−1}, Z_k ≥ c_k) = a(t_k) − a(t_{k−1}),   Z_k = (D_k − Δ) / se_k,

computed exactly for the canonical joint distribution (``Z_k √t_k`` a Brownian motion at ``t_k``; numerical
integration of its sub-densities, Armitage, McPherson & Rowe 1969). O'Brien–Fleming-type spending (the default,
``a(t) = 2 − 2Φ(z_{1−a/2} / √t)``) spends almost nothing early, so the last look's boundary is close to the
fixed-n one: little power is lost when the budget is used up. Pocock-type: ``a(t) = a · ln(1 + (e − 1) t)``.
The normal boundary is carried over to the t distribution of each look (ν_k: Satterthwaite, as the fixed-n
interval) by its nominal level — the usual t approximation of group-sequential tests.

**What α covers.** Each one-sided boundary holds ``P(Δ < D_k − q_k se_k for some k ≤ K) ≤ a``, whatever Δ is, so
the two-sided intervals at level ``1 − 2a`` cover Δ at *every* look at once with probability ≥ 1 − 2a. Any rule
that chooses when to stop — "when decided", "when the minutes run out", a row grown for another comparison — then
reports an interval that covers with that probability: the verdicts read off it (:func:`~.noise.at_least`: the 95%
interval excludes 0, each side at a = 2.5%; :func:`~.noise.equivalence`: two one-sided tests, the 90% interval
inside ±δ, each side at a = 5%) keep their error rates. Two conditions make it hold: the looks and the spending are
fixed before the first look (the design record of the grid, :func:`design_record`), and a look's statistic is a
fixed function of the seeds (the first ``n_k`` seeds of each row in the design's seed order, :func:`compare`): extra
seeds of one row, grown for another comparison, are left out until the other row reaches the next look.

**The input part.** The test inputs are the same at every look, so their part of the variance does not shrink
with n: the true information fractions ``V_K / V_k`` exceed the planned ``n_k / n_K`` and the looks are more
correlated than planned. More correlation means fewer crossings of one-sided boundaries (Slepian's inequality):
the design is conservative then, exact when the seed part dominates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import special, stats

from . import noise
from .noise import Replicates

OBRIEN_FLEMING, POCOCK = "obrien-fleming", "pocock"
SPENDING = (OBRIEN_FLEMING, POCOCK)
SPENDING_NAMES = {OBRIEN_FLEMING: "O'Brien–Fleming", POCOCK: "Pocock"}
#: The level of the verdicts of a difference (its interval is the 1 − ALPHA one), as the fixed-n report's 95%.
ALPHA = 0.05


def spent(spending: str, a: float, t: np.ndarray) -> np.ndarray:
    """Lan–DeMets α-spending: the one-sided error ``a(t)`` spent by information fraction ``t`` (``a(1) = a``)."""
    t = np.asarray(t, float)
    if spending == OBRIEN_FLEMING:
        return 2 * stats.norm.sf(stats.norm.isf(a / 2) / np.sqrt(t))
    if spending == POCOCK:
        return a * np.log1p((math.e - 1) * t)
    raise ValueError(f"unknown spending function {spending!r}; known: {', '.join(SPENDING)}")


_GRID = 401     # points (odd: Simpson's rule) of the numerical integration of a look's sub-density
_EDGE = 9.0     # B (sd ≤ 1) is taken to lie within ±_EDGE (P(|N(0, 1)| > 9) ≈ 2e-19)


def _simpson(x: np.ndarray) -> np.ndarray:
    """Simpson's-rule weights of an evenly spaced grid of an odd number of points."""
    w = np.ones(len(x))
    w[1:-1:2], w[2:-1:2] = 4, 2
    return w * (x[1] - x[0]) / 3


@lru_cache(maxsize=64)
def z_boundaries(fractions: tuple[float, ...], a: float, spending: str = OBRIEN_FLEMING) -> tuple[float, ...]:
    """The one-sided normal boundaries ``c_k`` of looks at information ``fractions`` (increasing, the last 1) that
    spend ``a`` in all: the canonical process ``B(t_k) = Z_k √t_k`` (a Brownian motion) first crosses ``c_k √t_k``
    at look k with probability ``a(t_k) − a(t_{k−1})``; ``inf`` where a look spends (almost) nothing."""
    from scipy.optimize import brentq

    t = np.asarray(fractions, float)
    if not (t[0] > 0 and np.all(np.diff(t) > 0) and abs(t[-1] - 1) < 1e-12):
        raise ValueError(f"information fractions must rise to 1, got {fractions}")
    budget = np.diff(np.concatenate([[0.0], spent(spending, a, t)]))
    bounds: list[float] = []
    x = density = None     # the sub-density of B(t_{k−1}) on its continuation region, on a grid
    for k in range(len(t)):
        sd = math.sqrt(t[k] - (t[k - 1] if k else 0.0))
        mass = _simpson(x) * density if k else None
        if budget[k] <= 1e-15:
            b = math.inf
        elif k == 0:
            b = float(stats.norm.isf(budget[0])) * sd
        else:
            def crossing(level: float) -> float:
                return float(mass @ special.ndtr((x - level) / sd))

            b = brentq(lambda level: crossing(level) - budget[k], -_EDGE, _EDGE, xtol=1e-12)
        bounds.append(b / math.sqrt(t[k]))
        grid = np.linspace(-_EDGE, min(b, _EDGE), _GRID)
        if k == 0:
            density = stats.norm.pdf(grid, scale=sd)
        else:
            z = (grid[:, None] - x[None, :]) / sd
            density = (np.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))) @ mass
        x = grid
    return tuple(bounds)


# --------------------------------------------------------------------------- the design
@dataclass(frozen=True)
class Design:
    """When a sequentially grown comparison is looked at: after ``start`` seeds per row, then every ``step`` more,
    up to ``max_seeds`` (the last look, whatever the step leaves); ``alpha``: the two-sided level of the verdicts
    of a difference (the 1 − α interval; equivalence: two one-sided tests at α each); ``spending``: the
    Lan–DeMets function that spreads it over the looks. Fixed before the first look."""

    start: int
    step: int
    max_seeds: int
    alpha: float = ALPHA
    spending: str = OBRIEN_FLEMING

    def __post_init__(self) -> None:
        if not (noise.MIN_OWN_SEEDS <= self.start <= self.max_seeds and self.step >= 1 and 0 < self.alpha < 0.5
                and self.spending in SPENDING):
            raise ValueError(f"a design needs {noise.MIN_OWN_SEEDS} ≤ start ≤ max_seeds, step ≥ 1, 0 < alpha < 0.5 "
                             f"and spending one of {', '.join(SPENDING)}; got {self}")

    @property
    def looks(self) -> tuple[int, ...]:
        """Seeds per row at each look: n_1 = start, …, n_K = max_seeds."""
        return (*range(self.start, self.max_seeds, self.step), self.max_seeds)

    def look_at(self, n: int) -> int | None:
        """The index (0-based) of the last look that ``n`` seeds per row reach; None before the first."""
        reached = [k for k, n_k in enumerate(self.looks) if n_k <= n]
        return reached[-1] if reached else None

    def critical(self, k: int, level: float, df) -> np.ndarray | float:
        """The multiplier ``q_k`` of a two-sided repeated ``level`` interval at look ``k``: the one-sided normal
        boundary for ``(1 − level) / 2`` carried to a t with ``df`` degrees of freedom by its nominal level
        (``df`` may be an array; inf: the normal boundary)."""
        fractions = tuple(n / self.max_seeds for n in self.looks)
        c = z_boundaries(fractions, round((1 - level) / 2, 12), self.spending)[k]
        if not math.isfinite(c):
            return np.full(np.shape(df), math.inf) if np.ndim(df) else math.inf
        q = stats.t.isf(stats.norm.sf(c), df)
        return q if np.ndim(q) else float(q)

    def as_record(self) -> dict:
        return asdict(self)

    @staticmethod
    def of_record(record: dict) -> "Design":
        return Design(**{k: record[k] for k in ("start", "step", "max_seeds", "alpha", "spending")})

    def describe(self) -> str:
        looks = ", ".join(map(str, self.looks))
        return (f"looks at {looks} seeds per row; {SPENDING_NAMES[self.spending]}-type α-spending "
                f"(Lan–DeMets), α = {self.alpha:g}")


def seed_order(seeds: list[int] | tuple[int, ...], n: int) -> list[int]:
    """The first ``n`` seeds of a design: the grid's own, then the integers after its largest, in turn."""
    out = list(dict.fromkeys(int(s) for s in seeds))[:n]
    nxt = max(out) + 1
    while len(out) < n:
        out.append(nxt)
        nxt += 1
    return out


@dataclass(frozen=True)
class Look:
    """A difference read at look ``index`` of ``design``: its interval is the repeated confidence interval."""

    design: Design
    index: int

    def critical(self, level: float, df: float) -> float:
        return self.design.critical(self.index, level, df)

    def describe(self) -> str:
        looks = self.design.looks
        return (f"sequential interval, look {self.index + 1} of {len(looks)}: {looks[self.index]} seeds per row of "
                f"≤ {looks[-1]}, {SPENDING_NAMES[self.design.spending]}-type α-spending")


@dataclass(frozen=True)
class Sequence:
    """Where a row's seeds stand in a design: its design, its family (task, method and setting: the cells that differ
    in their seed only) and each value's place in the design's seed order (:func:`seed_order`)."""

    design: Design
    family: str
    positions: tuple[int, ...]

    @property
    def n(self) -> int:
        """The seeds of the row that a look may use: the longest run of places 0, 1, 2, … it holds."""
        held, n = set(self.positions), 0
        while n in held:
            n += 1
        return n


def first(row: Replicates, n: int) -> Replicates:
    """``row`` restricted to its first ``n`` seeds in the design's order (its :attr:`~.noise.Replicates.sequence`)."""
    positions = np.asarray(row.sequence.positions)
    keep = np.array([int(np.flatnonzero(positions == p)[0]) for p in range(n)], dtype=int)
    return replace(row, values=row.values[keep], resampled=None if row.resampled is None else row.resampled[:, keep],
                   sequence=replace(row.sequence, positions=tuple(range(n))))


def applies(a: Replicates | None, b: Replicates | None) -> bool:
    """Both rows were grown by one design (then their comparison is read sequentially: any two of its families
    have a well-defined statistic at every look, whichever rows the design grew for which comparison)."""
    sa, sb = (getattr(r, "sequence", None) for r in (a, b))
    return sa is not None and sb is not None and sa.design == sb.design


def difference(a: Replicates, b: Replicates) -> noise.Difference:
    """A − B of two rows of one design (:func:`applies`) at their last common look: each row's first ``n_k`` seeds
    (the look that both reach), the noise model's estimate, standard error and degrees of freedom
    (:func:`~.noise.difference`), and the repeated ``1 − α`` interval of that look. Before the first look: the
    estimate of what there is, without an interval at any level (nothing is decided on it)."""
    design = a.sequence.design
    k = design.look_at(min(a.sequence.n, b.sequence.n))
    if k is None:
        return replace(noise.difference(a, b), low=math.nan, high=math.nan, se=math.nan)
    n = design.looks[k]
    d = replace(noise.difference(first(a, n), first(b, n)), look=Look(design, k))
    low, high = d.interval(1 - design.alpha)
    return replace(d, low=low, high=high)


# --------------------------------------------------------------------------- when to stop
DIFFERENCE, EQUIVALENCE = ">", "~"


@dataclass(frozen=True)
class Comparison:
    """What a researcher asks to decide: ``a > b`` (a difference: holds when the interval lies above 0, does not
    hold below it) or ``a ~ b`` (as good as: equivalent within ±``margin`` by two one-sided tests, or not), on
    ``metric`` (None: the task's primary). Positive differences favour ``a`` in the metric's direction."""

    a: str
    kind: str
    b: str
    metric: str | None = None
    margin: float = 0.0

    def __str__(self) -> str:
        return f"{self.a}{self.kind}{self.b}" + (f"@{self.metric}" if self.metric else "")


def verdict(comparison: Comparison, d: noise.Difference) -> str:
    """The comparison's verdict from its (sequential) difference: :func:`~.noise.at_least` against 0 for ``>``,
    :func:`~.noise.equivalence` against the margin for ``~`` (at the design's α)."""
    if comparison.kind == EQUIVALENCE:
        alpha = d.look.design.alpha if d.look is not None else ALPHA
        return noise.equivalence(d, comparison.margin, alpha)
    return noise.at_least(d, 0.0)


@dataclass(frozen=True)
class Decision:
    """One comparison in one group, now: its difference and verdict, and how many seeds each of its rows needs
    next (0: none — decided, or the design's last look reached undecided)."""

    group: str
    comparison: Comparison
    difference: noise.Difference | None
    verdict: str
    need: int

    @property
    def decided(self) -> bool:
        return self.verdict != noise.UNDECIDED


def decide(group: str, comparison: Comparison, a: Replicates | None, b: Replicates | None,
           design: Design) -> Decision:
    """The stopping rule, a pure function of the rows' seeds: read the comparison at the last look both rows
    reach; decided → stop; undecided → both rows need the next look's seeds; at the last look → stop undecided
    (the budget is spent). A row with no seeds yet, or fewer than the first look, needs the first look's."""
    n = min(a.sequence.n if a is not None else 0, b.sequence.n if b is not None else 0)
    k = design.look_at(n)
    if k is None:
        return Decision(group, comparison, None, noise.UNDECIDED, design.looks[0])
    d = difference(a, b)
    v = verdict(comparison, d)
    if v != noise.UNDECIDED or k == len(design.looks) - 1:
        return Decision(group, comparison, d, v, 0)
    return Decision(group, comparison, d, v, design.looks[k + 1])


# --------------------------------------------------------------------------- the design's record in the store
#: ``RESULTS/grids/<grid>-<profile>-<digest>`` + this: a sequential grid's design, written before its first look
#: (atomically, :func:`harness.store.io.write_json`) with the runs of each family and their places in its seed order.
from ..store.bundle import DESIGN_SUFFIX as RECORD_SUFFIX, GRIDS  # noqa: E402 (one place: a bundle ships them)


def design_record(design: Design, comparisons: list[Comparison], seeds: list[int],
                  families: dict[str, dict[str, int]]) -> dict:
    """What a report needs to read a sequential grid's rows: the design, what it was asked to decide, its seed
    order and, per family, run id → place in that order."""
    return {"design": design.as_record(), "comparisons": [str(c) for c in comparisons],
            "margins": {str(c): c.margin for c in comparisons if c.kind == EQUIVALENCE}, "seeds": list(seeds),
            "families": families}


def _records(root: str) -> dict[str, tuple[Design, str, int]]:
    import json
    from pathlib import Path

    runs: dict[str, tuple[Design, str, int]] = {}
    folder = Path(root) / GRIDS
    for path in sorted(folder.glob(f"*{RECORD_SUFFIX}")) if folder.is_dir() else ():
        record = json.loads(path.read_text())
        design = Design.of_record(record["design"])
        for family, places in record["families"].items():
            for run_id, place in places.items():
                runs[run_id] = (design, f"{path.name}:{family}", int(place))
    return runs


def _method_of(family: str) -> str:
    """The method of a family as :func:`harness.grid.until_decided.family` names it (``record:task · method`` and
    its axes, ``k=v`` each): the last part that is not an axis, read from the right (a task name may hold " · ")."""
    parts = [part for part in family.split(" · ") if "=" not in part]
    return parts[-1] if len(parts) > 1 else ""


def mark(root, lines: dict[str, dict], rows: dict[str, Replicates]) -> dict[str, Replicates]:
    """``rows`` (label → replicates of the summary line ``lines[label]``) with a :class:`Sequence` on each row whose
    runs are all one family of a sequential grid recorded under ``root`` (:data:`RECORD_SUFFIX`) and whose model is
    that family's method; others as they are. The teacher's line (one model, read from one run's evaluation of it)
    is never a family's row, even when the run it is read from is one: marked, it was read at the design's looks
    (n = 1: before the first, no interval)."""
    runs = _records(str(root))
    if not runs:
        return rows
    out = dict(rows)
    for label, row in rows.items():
        line = lines.get(label)
        if line is None or len(line["replicates"]) != row.n or row.fixed:
            continue
        if any(_method_of(runs[r.run_id][1]) != line.get("model") for r in line["replicates"] if r.run_id in runs):
            continue   # another model's evaluation in the family's runs (the pre-distilled student's in a KD run)
        found = [runs.get(r.run_id) for r in line["replicates"]]
        if all(found) and len({(d, f) for d, f, _ in found}) == 1:
            design, family, _ = found[0]
            out[label] = replace(row, sequence=Sequence(design, family, tuple(p for _, _, p in found)))
    return out

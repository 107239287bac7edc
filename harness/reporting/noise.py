"""One model of the noise behind a comparison of two rows: seeds and test inputs together.

A row's score is the mean over its seeds ``s = 1..n`` of a corpus metric on the test inputs
``i = 1..m``. Written as a crossed random-effects model (per-example parts, any metric whose corpus
score a bootstrap can recompute):

    y[r, s, i] = μ_r + u[r, s] + v_i + w[r, i] + e[r, s, i]

``u``: the seed's effect on the whole test set (training randomness); ``v``: how hard input ``i``
is (shared by every row, so it cancels in a difference); ``w``: how much row ``r`` gains or loses on
input ``i`` beyond that (what a new sample of inputs changes); ``e``: the seed's effect on one input.
The difference of two rows A − B has

    Var(D) = σ²_uA/n_A + σ²_uB/n_B + σ²_eA/(n_A m) + σ²_eB/(n_B m) + σ²_w(A−B)/m.

* **Seed part.** The sample variance over seeds of a row's corpus scores (inputs fixed) estimates
  ``σ²_u + σ²_e/m``: divided by n it covers the first four terms (Welch; ``n − 1`` degrees of freedom).
  A row with fewer than :data:`MIN_OWN_SEEDS` seeds borrows the variance pooled over the task's rows
  that have at least two (their degrees of freedom added): it is shown, never decided on its own.
* **Input part.** A bootstrap over the test inputs (one draw shared by both rows, each replicate's
  corpus score recomputed from its per-input parts) gives the variance of the seed-averaged
  difference, ``σ²_w/m`` plus the ``e`` terms again. Those are taken out — the bootstrap variance of
  each seed's deviation from its row's mean estimates ``σ²_e (1 − 1/n)/m`` — so nothing is counted
  twice (the small-sample correction; the raw two-level bootstrap over seeds and inputs counts it
  twice and has no distinct seed draws at n = 1).
* **Interval.** ``D ± t_{0.975, ν} √(V_seed + V_input)``, ν by Satterthwaite (the input part with
  infinite degrees of freedom).

Verdicts: a difference "holds" (better or worse) when its 95% interval excludes 0; "as good as"
claims are two one-sided tests against a margin δ (TOST): *equivalent* when the 90% interval lies
inside (−δ, δ), *not equivalent* when the 95% interval lies outside [−δ, δ], else *undecided*.
Sign convention: every difference is A − B on the metric's own scale; for a lower-is-better metric the
caller flips the sign first if "better" should read as positive.

Rows grown by ``harness grid --until-decided`` are read at a look of a group-sequential design, whose repeated
intervals replace the fixed-n t quantile (:mod:`~harness.reporting.sequential`).

``tests/test_noise_calibration.py`` checks the coverage, the false-positive rate and the verdicts by
simulation from this model at n = 1, 3, 6, 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

#: A row needs this many seeds for its own seed variance, a mark (†, bold) or a rank interval.
MIN_OWN_SEEDS = 3


@dataclass(frozen=True)
class Replicates:
    """One row: its seeds' corpus scores (fixed inputs) and the same scores on each bootstrap draw of inputs
    (``resampled[b, s]``: draw b, seed s; every row of a comparison on the same draws), if available."""

    values: np.ndarray
    resampled: np.ndarray | None = None
    #: One model shared by every seed of the rows it is compared with (the teacher, evaluated once): its seed part
    #: is 0 by design — no seed made it, so no seed of a comparison varies it — and so is its seed-by-input part.
    #: Only its inputs vary (``resampled``); it is never exploratory.
    fixed: bool = False
    #: A row grown by a sequential design (:class:`~harness.reporting.sequential.Sequence`: each value's place in
    #: the design's seed order); its comparisons with rows of the same design read the design's repeated interval.
    sequence: object = None

    @staticmethod
    def of(values: Sequence[float], resampled: np.ndarray | None = None, fixed: bool = False) -> "Replicates":
        values = np.asarray(values, dtype=float)
        if resampled is not None:
            resampled = np.asarray(resampled, dtype=float).reshape(-1, len(values))
        return Replicates(values, resampled, fixed)

    @property
    def exploratory(self) -> bool:
        """Fewer than :data:`MIN_OWN_SEEDS` seeds of its own (a fixed row has none to have): shown, never marked."""
        return not self.fixed and self.n < MIN_OWN_SEEDS

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(self.values.mean())


@dataclass(frozen=True)
class PooledSeedVariance:
    """The seed variance of a task's rows pooled (each row's sample variance weighted by its n − 1)."""

    variance: float
    df: int

    @staticmethod
    def of(rows: Sequence[Replicates]) -> "PooledSeedVariance | None":
        usable = [r for r in rows if r.n >= 2]
        df = sum(r.n - 1 for r in usable)
        if df == 0:
            return None
        return PooledSeedVariance(float(sum((r.n - 1) * r.values.var(ddof=1) for r in usable) / df), df)


@dataclass(frozen=True)
class Difference:
    """A − B with its 95% interval and what it is made of."""

    estimate: float
    low: float
    high: float
    se: float
    df: float
    n_a: int
    n_b: int
    seed_variance: float     # V_seed: the variance of the estimate from the seeds
    input_variance: float    # V_input: from the test inputs (after the correction)
    fixed_a: bool = False    # a side that is one shared model (:attr:`Replicates.fixed`): never exploratory
    fixed_b: bool = False
    #: The look of a sequential design it was read at (:class:`~harness.reporting.sequential.Look`): its intervals
    #: are then that look's repeated confidence intervals (valid whenever the seeds stopped); None: fixed n.
    look: object = None

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def decided(self) -> bool:
        """The 95% interval excludes 0 (math.nan intervals decide nothing)."""
        return bool(self.low > 0 or self.high < 0)

    @property
    def exploratory(self) -> bool:
        """A side with fewer than :data:`MIN_OWN_SEEDS` seeds: shown, never marked."""
        return ((not self.fixed_a and self.n_a < MIN_OWN_SEEDS)
                or (not self.fixed_b and self.n_b < MIN_OWN_SEEDS))

    def interval(self, level: float) -> tuple[float, float]:
        """The two-sided interval at ``level`` from the same standard error and degrees of freedom (at a sequential
        look: the repeated confidence interval, :attr:`look`)."""
        if not math.isfinite(self.se):
            return math.nan, math.nan
        if self.se == 0:
            return self.estimate, self.estimate
        q = self.look.critical(level, self.df) if self.look is not None else float(stats.t.ppf(0.5 + level / 2, self.df))
        return self.estimate - q * self.se, self.estimate + q * self.se


def _seed_part(row: Replicates, pooled: PooledSeedVariance | None) -> tuple[float, float]:
    """(variance of the row's mean from its seeds, its degrees of freedom); NaN when nothing estimates it."""
    if row.fixed:
        return 0.0, math.inf
    if row.n >= MIN_OWN_SEEDS or (row.n >= 2 and pooled is None):
        return float(row.values.var(ddof=1)) / row.n, row.n - 1
    if pooled is None:
        return math.nan, math.nan
    return pooled.variance / row.n, pooled.df


def _within_seed_input_variance(row: Replicates) -> float:
    """σ²_e/(n m) from the bootstrap draws: the mean over seeds of Var*(y*_s − ȳ*), divided by n − 1."""
    if row.resampled is None or row.n < 2 or row.fixed:
        return 0.0
    deviations = row.resampled - row.resampled.mean(axis=1, keepdims=True)
    return float(deviations.var(axis=0, ddof=1).mean()) / (row.n - 1)


def input_variance(a: Replicates, b: Replicates | None, pooled_within: float | None = None) -> float:
    """V_input of A − B (of A alone when ``b`` is None): the bootstrap variance of the seed-averaged difference,
    less the seed-by-input noise that the seed part already holds. A row with one seed cannot separate that
    noise from its inputs; ``pooled_within`` (σ²_e/m pooled from other rows) is used for it when given."""
    if a.resampled is None or (b is not None and b.resampled is None):
        return 0.0
    difference = a.resampled.mean(axis=1) - (b.resampled.mean(axis=1) if b is not None else 0.0)
    raw = float(difference.var(ddof=1))
    correction = 0.0
    for row in (a, b) if b is not None else (a,):
        if row.fixed:
            continue
        if row.n >= 2:
            correction += _within_seed_input_variance(row)
        elif pooled_within is not None:
            correction += pooled_within / row.n
    return max(raw - correction, 0.0)


def pooled_within_seed_input_variance(rows: Sequence[Replicates]) -> float | None:
    """σ²_e/m pooled over the rows with two or more seeds and bootstrap draws (each weighted by n − 1)."""
    usable = [r for r in rows if r.n >= 2 and r.resampled is not None and not r.fixed]
    if not usable:
        return None
    df = sum(r.n - 1 for r in usable)
    return sum((r.n - 1) * _within_seed_input_variance(r) * r.n for r in usable) / df


def difference(a: Replicates, b: Replicates, pooled: PooledSeedVariance | None = None,
               pooled_within: float | None = None, level: float = 0.95) -> Difference:
    """A − B (means over seeds) with its interval under the model above.

    ``pooled``: the task's pooled seed variance (:meth:`PooledSeedVariance.of`), used for a side with fewer
    than :data:`MIN_OWN_SEEDS` seeds; without it such a side uses its own variance if it has two seeds, and
    the interval is NaN with one."""
    var_a, df_a = _seed_part(a, pooled)
    var_b, df_b = _seed_part(b, pooled)
    v_input = input_variance(a, b, pooled_within)
    estimate = a.mean - b.mean
    if not (math.isfinite(var_a) and math.isfinite(var_b)):
        return Difference(estimate, math.nan, math.nan, math.nan, math.nan, a.n, b.n, math.nan, v_input, a.fixed, b.fixed)
    # The same pooled estimate on both sides is one variance, not two independent ones.
    if df_a == df_b and pooled is not None and var_a * a.n == pooled.variance == var_b * b.n:
        parts = [(var_a + var_b, df_a)]
    else:
        parts = [(var_a, df_a), (var_b, df_b)]
    v_seed = sum(v for v, _ in parts)
    total = v_seed + v_input
    se = math.sqrt(total)
    denominator = sum(v * v / d for v, d in parts if d > 0 and v > 0)
    df = total * total / denominator if denominator > 0 else math.inf
    out = Difference(estimate, math.nan, math.nan, se, df, a.n, b.n, v_seed, v_input, a.fixed, b.fixed)
    low, high = out.interval(level)
    return Difference(estimate, low, high, se, df, a.n, b.n, v_seed, v_input, a.fixed, b.fixed)


EQUIVALENT, NOT_EQUIVALENT, UNDECIDED = "equivalent", "not equivalent", "undecided"
HOLDS, DOES_NOT_HOLD = "holds", "does not hold"


def equivalence(diff: Difference, margin: float, alpha: float = 0.05) -> str:
    """Two one-sided tests of |A − B| < ``margin``: equivalent when the (1 − 2α) interval lies inside
    (−margin, margin); not equivalent when the (1 − α) interval lies outside [−margin, margin]; else undecided."""
    if margin <= 0:
        raise ValueError(f"an equivalence margin must be positive, got {margin}")
    low, high = diff.interval(1 - 2 * alpha)
    if not (math.isfinite(low) and math.isfinite(high)):
        return UNDECIDED
    if -margin < low and high < margin:
        return EQUIVALENT
    low95, high95 = diff.interval(1 - alpha)
    if low95 > margin or high95 < -margin:
        return NOT_EQUIVALENT
    return UNDECIDED


def at_least(diff: Difference, threshold: float = 0.0) -> str:
    """A one-sided claim "A − B ≥ threshold" read from the 95% interval: holds when the interval lies above
    the threshold, does not hold when it lies below, else undecided."""
    if not (math.isfinite(diff.low) and math.isfinite(diff.high)):
        return UNDECIDED
    if diff.low > threshold:
        return HOLDS
    if diff.high < threshold:
        return DOES_NOT_HOLD
    return UNDECIDED


def row_variance(row: Replicates, pooled: PooledSeedVariance | None = None,
                 pooled_within: float | None = None) -> tuple[float, float, float]:
    """(V_seed, its degrees of freedom, V_input) of one row's mean — the parts :func:`difference` adds for a
    pair, here for a row on its own (the input part is then the row's whole input variance, v included)."""
    v_seed, df = _seed_part(row, pooled)
    return v_seed, df, input_variance(row, None, pooled_within)


def score_draws(rows: dict[str, Replicates], n_draws: int = 2000, seed: int | None = 12345,
                pooled: PooledSeedVariance | None = None, pooled_within: float | None = None) -> np.ndarray:
    """Draws of every row's mean from the model (``[draw, row]``, rows in ``rows`` order), for rank intervals and
    Kendall τ: the input part from the rows' shared bootstrap draws (one draw of inputs for every row, so rows
    stay correlated through the inputs as they are), shrunk by √(V_input / V_boot) to leave out the seed-by-input
    noise the seed part holds; the seed part a scaled t draw per row. Rows must share their bootstrap draws
    (every row's ``resampled`` with the same number of draws) or have none."""
    rng = np.random.default_rng(seed)
    columns = []
    for row in rows.values():
        v_seed, df, v_input = row_variance(row, pooled, pooled_within)
        if not math.isfinite(v_seed):
            raise ValueError("a row without a seed variance (one seed and no pooled estimate) has no draws")
        draw = np.full(n_draws, row.mean)
        if row.resampled is not None and v_input > 0:
            means = row.resampled.mean(axis=1)
            centred = means - means.mean()
            shrink = math.sqrt(v_input / centred.var(ddof=1))
            draw = draw + shrink * centred[np.arange(n_draws) % len(centred)]
        if v_seed > 0:
            draw = draw + math.sqrt(v_seed) * rng.standard_t(df if math.isfinite(df) else 1e9, n_draws)
        columns.append(draw)
    return np.stack(columns, axis=1)

"""The noise model of a comparison (:mod:`harness.reporting.noise`) checked by simulation.

Stores are drawn from a known crossed model — seed effects u, input difficulty v, row-by-input effects w,
seed-by-input noise e — with the true difference of two rows zero and non-zero, at n = 1, 3, 6, 10 seeds.
The 95% intervals must cover the truth 93–97% of the time, a mark (interval excluding 0, n ≥ 3) must come
with ≤ 5% false positives, and equivalence verdicts must be wrong ≤ 5% of the time. The last test shows
why the bootstrap over test inputs alone (the † of the report before this model) cannot be used: with seed
variance in the runs it marks equal rows at twice the nominal 5% or more.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.reporting.noise import (EQUIVALENT, MIN_OWN_SEEDS, NOT_EQUIVALENT, PooledSeedVariance, Replicates, score_draws,
                                     difference, equivalence, input_variance, pooled_within_seed_input_variance)

M = 120               # test inputs
B = 200               # bootstrap draws of the inputs per simulated store
SD = {"u": 0.5, "v": 5.0, "w": 2.0, "e": 6.0}
STORES = 1000


# The bootstrap's draws of input indices, shared by every simulated store: the draws are independent of the
# data, and each store draws its data afresh, so one set of draws serves them all (and keeps the test fast).
COUNTS = np.random.default_rng(2026).multinomial(M, np.full(M, 1 / M), size=B).astype(float) / M   # [B, M]


def within(rate: float, stores: int, target: float = 0.05) -> bool:
    """``rate`` of ``stores`` simulated stores is at most ``target`` up to the binomial noise of the simulation
    (2.33 standard errors: a one-sided 1% test that the true rate exceeds the target)."""
    return rate <= target + 2.33 * math.sqrt(target * (1 - target) / stores)


def simulate(rng, means, seeds):
    """One store: per row its seeds' corpus scores (the mean over inputs of per-example scores) and the same on
    B shared bootstrap draws of the inputs."""
    v = rng.normal(0, SD["v"], M)
    counts = COUNTS
    rows = []
    for mu, n in zip(means, seeds):
        w = rng.normal(0, SD["w"], M)
        y = mu + rng.normal(0, SD["u"], (n, 1)) + v + w + rng.normal(0, SD["e"], (n, M))   # [n, M]
        rows.append(Replicates.of(y.mean(1), counts @ y.T))
    return rows


def verdicts(n, true_difference, margin=None, stores=STORES, seed=0):
    """Simulate ``stores`` stores: A and B with n seeds each (B with 3 when n < 3, as a baseline has), two more
    rows with max(n, 3) for the pool. Returns (covered, marked, equivalence verdicts) per store."""
    rng = np.random.default_rng(seed)
    other = max(n, MIN_OWN_SEEDS)
    covered, marked, eq = [], [], []
    for _ in range(stores):
        a, b, c, d = simulate(rng, [true_difference, 0.0, 0.3, -0.2], [n, other if n < 3 else n, other, other])
        rows = [a, b, c, d]
        diff = difference(a, b, PooledSeedVariance.of(rows), pooled_within_seed_input_variance(rows))
        covered.append(diff.low <= true_difference <= diff.high)
        marked.append(diff.decided and not diff.exploratory)
        if margin is not None:
            eq.append(equivalence(diff, margin))
    return np.array(covered), np.array(marked), eq


@pytest.mark.parametrize("n", [1, 3, 6, 10])
@pytest.mark.parametrize("true_difference", [0.0, 0.8])
def test_intervals_cover_95_percent_and_marks_stay_under_5(n, true_difference):
    covered, marked, _ = verdicts(n, true_difference, seed=n * 10 + int(true_difference * 10))
    assert 0.93 <= covered.mean() <= 0.97, covered.mean()
    if true_difference == 0:   # a mark on equal rows is a false positive
        assert within(marked.mean(), STORES), marked.mean()
    if n < MIN_OWN_SEEDS:
        assert not marked.any()    # exploratory rows are never marked


@pytest.mark.parametrize("n", [3, 10])
def test_equivalence_verdicts_wrong_at_most_5_percent(n):
    margin = 1.0
    # At the margin itself the rows are not equivalent: "equivalent" would be wrong.
    _, _, at_margin = verdicts(n, margin, margin=margin, stores=800, seed=200 + n)
    assert within(np.mean([v == EQUIVALENT for v in at_margin]), 800)
    # Equal rows are equivalent: "not equivalent" would be wrong.
    _, _, equal = verdicts(n, 0.0, margin=margin, stores=800, seed=300 + n)
    assert within(np.mean([v == NOT_EQUIVALENT for v in equal]), 800)


def test_equivalence_is_reached_with_enough_seeds():
    """The test can say "equivalent" at all: equal rows at n = 10 against a generous margin."""
    _, _, equal = verdicts(10, 0.0, margin=2.0, stores=200, seed=400)
    assert np.mean([v == EQUIVALENT for v in equal]) > 0.8


def test_the_correction_removes_the_double_counted_noise():
    """Without taking the seed-by-input noise out of the bootstrap part the interval over-covers (it counts
    σ²_e/(n m) twice); with it, the input part estimates σ²_w(A−B)/m."""
    rng = np.random.default_rng(7)
    estimates = []
    for _ in range(400):
        a, b = simulate(rng, [0.0, 0.0], [6, 6])
        estimates.append(input_variance(a, b))
    truth = 2 * SD["w"] ** 2 / M
    assert abs(np.mean(estimates) / truth - 1) < 0.15, (np.mean(estimates), truth)


def test_inputs_alone_overclaim():
    """The paired bootstrap over test inputs alone treats each run's outputs as fixed: with seed variance in the
    runs it marks equal rows far more often than 5% (why the report's † needed this model)."""
    rng = np.random.default_rng(11)
    marked = []
    for _ in range(400):
        a, b = simulate(rng, [0.0, 0.0], [1, 3])
        draws = a.resampled.mean(1) - b.resampled.mean(1)
        half = 1.96 * draws.std(ddof=1)
        observed = a.mean - b.mean
        marked.append(abs(observed) > half)
    assert np.mean(marked) > 0.10


def test_one_seed_without_a_pool_decides_nothing():
    a = Replicates.of([30.0])
    b = Replicates.of([29.0])
    diff = difference(a, b)
    assert math.isnan(diff.low) and not diff.decided and diff.exploratory


def test_a_fixed_row_has_no_seed_part_and_only_its_inputs_vary():
    """The teacher, one model shared by every seed: no seed variance (0 by design, not unknown), no seed-by-input
    correction; a student against it is decided on the student's seeds and both rows' shared input draws."""
    rng = np.random.default_rng(3)
    scores = rng.normal(30.0, 5.0, (3, M))                       # a student: 3 seeds × M inputs
    teacher_scores = rng.normal(35.0, 5.0, M)
    student = Replicates.of(scores.mean(1), COUNTS @ scores.T)
    teacher = Replicates.of([teacher_scores.mean()], COUNTS @ teacher_scores[:, None], fixed=True)
    diff = difference(student, teacher)
    assert not teacher.exploratory and not diff.exploratory
    assert diff.seed_variance == pytest.approx(scores.mean(1).var(ddof=1) / 3)   # the student's alone
    total = diff.seed_variance + diff.input_variance                             # Satterthwaite: the student's
    assert diff.df == pytest.approx(total ** 2 / (diff.seed_variance ** 2 / 2))  # n − 1, inputs infinite
    assert diff.input_variance == pytest.approx(input_variance(student, teacher))
    raw = float((student.resampled.mean(1) - teacher.resampled[:, 0]).var(ddof=1))
    within = float((student.resampled - student.resampled.mean(1, keepdims=True)).var(axis=0, ddof=1).mean()) / 2
    assert diff.input_variance == pytest.approx(max(raw - within, 0.0))        # the student's correction only
    unshared = Replicates.of([teacher_scores.mean()], COUNTS @ teacher_scores[:, None])   # the same, not fixed
    assert difference(student, unshared).exploratory and math.isnan(difference(student, unshared).low)


def test_welch_without_inputs():
    """With no bootstrap draws the interval is Welch's t interval over seeds."""
    from scipy import stats

    a, b = Replicates.of([1.0, 2.0, 4.0]), Replicates.of([0.0, 0.5, 0.7, 1.1])
    diff = difference(a, b)
    va, vb = np.var([1.0, 2.0, 4.0], ddof=1) / 3, np.var([0.0, 0.5, 0.7, 1.1], ddof=1) / 4
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert diff.half_width == pytest.approx(half)
    assert diff.estimate == pytest.approx(7 / 3 - 0.575)


def test_score_draws_rank_separated_rows_exactly_and_tied_rows_widely():
    from harness.reporting.stability import ranks

    rng = np.random.default_rng(5)
    a, b, c = simulate(rng, [10.0, 0.0, 0.0], [3, 3, 3])
    draws = score_draws({"a": a, "b": b, "c": c}, n_draws=2000, seed=1)
    drawn = ranks(draws, lower_is_better=False)
    assert np.quantile(drawn[:, 0], 0.975) == 1               # ten points ahead: first in the 95% rank interval
    assert {2, 3} <= set(drawn[:, 1]) and {2, 3} <= set(drawn[:, 2])   # equal rows swap places
    assert abs(draws[:, 0].mean() - a.mean) < 0.1

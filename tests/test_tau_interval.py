"""Kendall τ's interval (harness.reporting.stability.sure_signs, tau_bounds): brute force for the bounds, and
coverage of the true means' τ by simulation.

The bounds are checked against every pair of total orders that keep the settled signs (small row counts:
all permutations). Coverage: stores of eight rows with known true means in two views (a twin and real text),
seeds drawn with noise, each view's means drawn from the report's noise model (``score_draws``), at n = 3 and 6
seeds — in the regimes the evidence store lives in: the same order with close means, DART's committed means
(one outlier far below seven within two points), and unrelated orders. The 95% interval must cover the τ of the
true means in at least 95% of the stores (less the simulation's noise); the percentile interval of τ over the
same draws (the report's interval before) covers it in none of the stores where the true orders agree and the
means are close: drawing adds noise to the means and pulls τ towards 0.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from harness.reporting.noise import Replicates, score_draws
from harness.reporting.ranking import kendall_tau
from harness.reporting import stability
from harness.reporting.stability import IQR_OF_NORMAL, interval, observed_signs, sure_signs, tau_bounds

STORES = 200
DRAWS = 800   # sure_signs reads a 97.5% quantile from at least 20 draws beyond it
SD = 1.0   # seed standard deviation of a row's score (the twins' three-seed ± of 0.6–2 points: 0.3–1)
SPACED = np.arange(8) * 1.5   # pairs 1.5 seed sds apart and more: six seeds settle most of them
SCENARIOS = {
    "same order, close": (np.linspace(0, 3, 8), np.linspace(0, 3, 8)),
    "dart": (np.array([34.4, 35.4, 36.1, 23.6, 36.2, 35.6, 35.6, 34.9]),
             np.array([23.3, 24.5, 22.9, 10.0, 25.7, 24.7, 25.5, 25.1])),
    "unrelated": (np.arange(8.0), np.array([3, 0, 7, 5, 1, 6, 2, 4.0])),
}


def consistent_orders(signs: np.ndarray):
    """Every strict order (scores 0..R−1) whose pairwise signs agree with the settled ones."""
    rows = len(signs)
    for perm in itertools.permutations(range(rows)):
        scores = np.array(perm, float)
        mine = observed_signs(scores)
        known = ~np.isnan(signs)
        if np.all(mine[known] == signs[known]):
            yield scores


def random_signs(rng, rows: int, open_share: float) -> np.ndarray:
    truth = observed_signs(rng.permutation(rows).astype(float))
    i, j = np.triu_indices(rows, k=1)
    hide = rng.random(len(i)) < open_share
    truth[i[hide], j[hide]] = truth[j[hide], i[hide]] = np.nan
    return truth


@pytest.mark.parametrize("outer", [False, True])
@pytest.mark.parametrize("trial", range(8))
def test_the_bounds_are_the_least_and_largest_tau_of_the_orders_that_keep_the_signs(trial, outer, monkeypatch):
    """Five rows; y a fixed side with ties in half the trials (published scores), x with open pairs; every third
    trial settles every pair of x; τ over a column subset in every other trial. Enumerated: the bounds are the
    least and the largest τ; the outer bounds (rows past the enumeration's limit) hold them."""
    if outer:
        monkeypatch.setattr(stability, "MAX_ENUMERATED_ROWS", 4)
    rng = np.random.default_rng(trial)
    x = random_signs(rng, 5, 0.0 if trial % 3 == 0 else 0.4)
    fixed = rng.integers(0, 3 if trial % 2 else 6, 5).astype(float)
    y = observed_signs(fixed)
    columns = [0, 2, 3, 4] if trial % 2 else None
    pick = (lambda v: v[columns]) if columns else (lambda v: v)
    taus = [kendall_tau(pick(a), pick(fixed)) for a in consistent_orders(x)]
    taus = [t for t in taus if np.isfinite(t)]
    low, high = tau_bounds(x, y, columns)
    if not taus:
        assert np.isnan(low) and np.isnan(high)
        return
    assert low <= min(taus) + 1e-12 and max(taus) <= high + 1e-12
    if not outer or not np.isnan(x).any():
        assert (low, high) == pytest.approx((min(taus), max(taus)))


@pytest.mark.parametrize("outer", [False, True])
@pytest.mark.parametrize("trial", range(4))
def test_the_bounds_hold_when_both_sides_have_open_pairs(trial, outer, monkeypatch):
    if outer:
        monkeypatch.setattr(stability, "MAX_ORDER_PAIRS", 1)
    rng = np.random.default_rng(100 + trial)
    x, y = random_signs(rng, 5, 0.4), random_signs(rng, 5, 0.4)
    taus = [kendall_tau(a, b) for a in consistent_orders(x) for b in consistent_orders(y)]
    low, high = tau_bounds(x, y)
    assert low <= min(taus) + 1e-12 and max(taus) <= high + 1e-12
    if not outer:
        assert (low, high) == pytest.approx((min(taus), max(taus)))


def test_transitivity_settles_what_each_pair_alone_leaves_open():
    """a > b and b > c settled, a ? c open: every order that keeps them has a > c, so τ against a > b > c is 1;
    the outer bounds, pair by pair, give [1/3, 1]."""
    x = observed_signs([3.0, 2.0, 1.0])
    x[0, 2] = x[2, 0] = np.nan
    y = observed_signs([3.0, 2.0, 1.0])
    assert tau_bounds(x, y) == pytest.approx((1.0, 1.0))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stability, "MAX_ENUMERATED_ROWS", 2)
        assert tau_bounds(x, y) == pytest.approx((1 / 3, 1.0))


def test_rows_left_out_of_the_columns_still_carry_transitivity():
    """a > d > c settled through d, which τ leaves out: over a, b, c the order of a and c is known."""
    x = np.full((4, 4), np.nan)
    np.fill_diagonal(x, 0.0)
    x[0, 3], x[3, 0], x[3, 2], x[2, 3] = 1.0, -1.0, 1.0, -1.0      # a > d, d > c
    y = observed_signs([3.0, 2.0, 1.0, 0.0])
    taus = [kendall_tau(a[[0, 1, 2]], np.array([3.0, 2.0, 1.0])) for a in consistent_orders(x)]
    assert tau_bounds(x, y, [0, 1, 2]) == pytest.approx((min(taus), max(taus)))
    assert min(taus) == pytest.approx(1 / 3)       # a > c in every order; b anywhere


def test_known_ties_of_the_published_side_count_as_tau_b_does():
    paper = [3.0, 3.0, 2.0, 1.0]                         # a tie, as published scores have them
    ours = observed_signs([4.0, 3.0, 2.0, 1.0])          # every pair settled
    low, high = tau_bounds(observed_signs(paper), ours)
    assert low == high == pytest.approx(kendall_tau(paper, [4.0, 3.0, 2.0, 1.0]))
    ours[0, 1] = ours[1, 0] = np.nan                     # open against the tie: no effect on τ-b
    assert tau_bounds(observed_signs(paper), ours) == pytest.approx((low, high))
    ours[2, 3] = ours[3, 2] = np.nan                     # open against a strict pair: ±1 over the denominator
    wider = tau_bounds(observed_signs(paper), ours)
    assert wider[0] < low and wider[1] == pytest.approx(high)   # τ is 1 on the other pairs already: capped at 1


def test_pairs_without_noise_or_draws_stay_open_and_far_apart_rows_are_settled():
    means = np.array([1.0, 2.0, 2.0])
    constant = sure_signs(means, np.tile(means, (400, 1)), 0.05)     # no noise in the model: nothing says exact
    assert np.isnan(constant[~np.eye(3, dtype=bool)]).all() and (np.diag(constant) == 0).all()
    rng = np.random.default_rng(0)
    far = np.array([0.0, 10.0, 10.2])
    draws = far + rng.normal(0, 0.5, (400, 3))
    signs = sure_signs(far, draws, 0.05)
    assert signs[1, 0] == 1 and signs[0, 1] == -1 and signs[2, 0] == 1 and np.isnan(signs[1, 2])
    assert sure_signs(far, draws[:100], 0.05) is None                # too few draws for the 95% quantile: no
    draws[5, 1] = np.nan                                             # matrix of open pairs ([−1, 1] for τ)
    assert sure_signs(far, draws, 0.05) is None                      # a draw that is not a number


def test_a_pair_whose_quartiles_coincide_is_scaled_by_its_spread():
    """70% of the draws at the mean, 30% spread wide: the interquartile range is 0, the pair is not exact (0.1
    apart: open) — and 30 apart it is settled, which only the spread's scale can do (a pair of scale 0 stays open)."""
    rng = np.random.default_rng(1)
    draws = np.zeros((1000, 2))
    draws[:300, 1] = rng.normal(0, 10, 300)
    signs = sure_signs(np.array([0.0, 0.1]), draws + [0.0, 0.1], 0.05)
    assert np.isnan(signs[0, 1]) and np.isnan(signs[1, 0])
    signs = sure_signs(np.array([0.0, 30.0]), draws + [0.0, 30.0], 0.05)
    assert signs[1, 0] == 1 and signs[0, 1] == -1


def test_the_step_down_settles_a_pair_the_first_band_leaves_open():
    """A far below B and C; B and C t apart, t between the second band (over the directions not yet claimed: B
    above A, C above A, and both of B–C) and the first (over all six directions)."""
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((4000, 3))
    noise -= noise.mean(0)
    pairs = {"ba": noise[:, 1] - noise[:, 0], "ca": noise[:, 2] - noise[:, 0], "cb": noise[:, 2] - noise[:, 1]}
    scale = {k: np.subtract(*np.quantile(v, [0.75, 0.25])) / IQR_OF_NORMAL for k, v in pairs.items()}
    z = {k: v / scale[k] for k, v in pairs.items()}
    first = np.quantile(np.max([np.abs(z["ba"]), np.abs(z["ca"]), np.abs(z["cb"])], axis=0), 0.95)
    second = np.quantile(np.max([-z["ba"], -z["ca"], np.abs(z["cb"])], axis=0), 0.95)
    assert second < first
    t = (first + second) / 2
    means = np.array([0.0, 10.0, 10.0 + t * scale["cb"]])
    signs = sure_signs(means, means + noise, 0.05)
    assert signs[2, 1] == 1 and signs[1, 0] == 1 and signs[2, 0] == 1


def test_a_row_far_below_the_rest_is_settled_at_three_seeds():
    """Real DART's ENGINE: 13 points below seven students within three, three seeds each (seed sd ≈ 0.7; each
    row's seed part a t draw with 2 degrees of freedom): most of its seven pairs are settled."""
    truth = [23.3, 24.5, 22.9, 10.0, 25.7, 24.7, 25.5, 25.1]
    settled = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        rows = {f"m{k}": Replicates.of(mu + rng.normal(0, 0.7, 3)) for k, mu in enumerate(truth)}
        means = np.array([r.mean for r in rows.values()])
        settled.append(int((np.delete(sure_signs(means, score_draws(rows, 1000, seed=seed), 0.025)[3], 3) == -1).sum()))
    assert np.mean(settled) >= 4, settled


def test_wrong_signs_are_claimed_in_at_most_5_percent_of_stores():
    """The guarantee itself: eight rows, true means equal in groups (0, 0, 0, 0.5, 0.5, 1, 2, 2), three and six
    seeds; a store errs when any claimed sign is not the true one (a tie claimed either way is wrong)."""
    truth = np.array([0, 0, 0, 0.5, 0.5, 1, 2, 2.0])
    true = observed_signs(truth)
    for n in (3, 6):
        rng = np.random.default_rng(n)
        wrong = 0
        for _ in range(STORES):
            rows = {f"m{k}": Replicates.of(mu + rng.normal(0, SD, n)) for k, mu in enumerate(truth)}
            means = np.array([r.mean for r in rows.values()])
            signs = sure_signs(means, score_draws(rows, DRAWS, seed=int(rng.integers(2**31))), 0.05)
            claimed = ~np.isnan(signs) & ~np.eye(8, dtype=bool)
            wrong += bool((signs[claimed] != true[claimed]).any())
        assert wrong / STORES <= 0.05 + 2.33 * math.sqrt(0.05 * 0.95 / STORES), (n, wrong)


def simulate(truths, n: int, seed: int):
    """Per simulated store: the τ of the observed means, the bounds, and the percentile interval of τ over the
    same draws (each view's draws from its own rows, views independent; each view's signs at 97.5%)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(STORES):
        means, draws = [], []
        for truth in truths:
            rows = {f"m{k}": Replicates.of(mu + rng.normal(0, SD, n)) for k, mu in enumerate(truth)}
            means.append(np.array([r.mean for r in rows.values()]))
            draws.append(score_draws(rows, DRAWS, seed=int(rng.integers(2**31))))
        bounds = tau_bounds(*(sure_signs(m, d, 0.025) for m, d in zip(means, draws)))
        percentile = interval(np.array([kendall_tau(a, b) for a, b in zip(*draws)]))
        out.append((kendall_tau(*means), bounds, percentile))
    return out


def covers(interval_, truth: float) -> bool:
    return interval_[0] - 1e-9 <= truth <= interval_[1] + 1e-9


@pytest.mark.parametrize("n", [3, 6])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_interval_covers_the_true_means_tau(scenario, n):
    truths = SCENARIOS[scenario]
    true_tau = kendall_tau(*truths)
    stores = simulate(truths, n, seed=n * 7 + len(scenario))
    rate = np.mean([covers(bounds, true_tau) for _, bounds, _ in stores])
    assert rate >= 0.95 - 2.33 * math.sqrt(0.05 * 0.95 / STORES), rate
    assert all(covers(bounds, tau) for tau, bounds, _ in stores)   # the estimate always lies inside


def test_the_interval_narrows_where_six_seeds_order_the_students():
    """Power: the coverage above would hold for [−1, 1] every time. Eight students 1.5 seed sds apart in both
    views, six seeds: the interval covers τ = 1 and its mean width is under 1 (measured ≈ 0.8; at three seeds the
    same students give ≈ 1.96: a three-seed row's seed part is a t draw with two degrees of freedom)."""
    stores = simulate((SPACED, SPACED), 6, seed=17)
    widths = [bounds[1] - bounds[0] for _, bounds, _ in stores]
    assert np.mean(widths) < 1.0, np.mean(widths)
    assert np.mean([covers(bounds, 1.0) for _, bounds, _ in stores]) >= 0.95 - 2.33 * math.sqrt(0.05 * 0.95 / STORES)


def test_far_apart_means_pin_tau_down():
    """The interval is not [−1, 1] by construction: eight rows 4 points apart (4 seed sds), six seeds, the same
    order in both views: the lower bound is 0.8 or more on average (0.93 when written)."""
    truths = (np.arange(8) * 4.0, np.arange(8) * 4.0)
    stores = simulate(truths, 6, seed=5)
    assert np.mean([bounds[0] for _, bounds, _ in stores]) >= 0.8


def test_the_percentile_interval_misses_agreeing_orders_of_close_means():
    truths = SCENARIOS["same order, close"]
    stores = simulate(truths, 3, seed=1)
    assert np.mean([covers(p, 1.0) for _, _, p in stores]) < 0.05      # why the report no longer uses it
    assert np.mean([covers(b, 1.0) for _, b, _ in stores]) >= 0.95


def test_past_the_enumeration_limit_the_columns_alone_are_enumerated():
    """Nine rows (past 8), τ over five of them: the orders of those five that keep their settled signs give the
    bounds (the other rows' transitivity left out: still valid), tighter than the outer bounds."""
    rng = np.random.default_rng(5)
    x = random_signs(rng, 9, 0.4)
    fixed = rng.permutation(9).astype(float)
    y = observed_signs(fixed)
    columns = [0, 2, 3, 5, 7]
    sub = x[np.ix_(columns, columns)]
    taus = [kendall_tau(a, fixed[columns]) for a in consistent_orders(sub)]
    assert tau_bounds(x, y, columns) == pytest.approx((min(taus), max(taus)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stability, "MAX_ENUMERATED_ROWS", 4)
        outer = tau_bounds(x, y, columns)
    assert outer[0] <= min(taus) + 1e-12 and max(taus) <= outer[1] + 1e-12

"""Intervals of sampled scores, checked against brute force and simulation (numpy only, no model, ~2 s):

* TeacherDist's order: each teacher's per-input terms (its own samples of each input) bootstrapped over inputs
  carry the noise of the inputs and of the samples together; the interval of two teachers' difference covers the
  exact difference (computed by enumerating every multiset of samples) about 95% of the time.
* A sampled teacher score over several decoding seeds: the decodings as the teacher's replicates in the noise
  model cover the true teacher − MLE difference about 95% of the time, and so does one decoding bootstrapped over
  inputs (each input's sample drawn independently).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from harness import evaluate as ev
from harness.reporting import noise
from harness.reporting.findings import teacher_dist_difference
from harness.reporting.noise import Replicates
from harness.reporting.stability import decompose

K = 5            # TeacherDist samples per input
INPUTS = 40      # test inputs per replication
DRAWS = 200      # bootstrap draws
REPLICATIONS = 200


def test_per_input_terms_average_to_teacher_dist():
    samples = [[["a", "b", "c"], ["a", "b", "d"]], [["x"], ["y"]], [["p", "q"], ["p", "q"]]]
    terms = ev.distinct_bigram_scores(samples)
    assert terms == [pytest.approx(100 * 3 / 4), None, pytest.approx(50.0)]
    assert ev.distinct_bigram_percent(samples) == pytest.approx((75.0 + 50.0) / 2)
    assert ev.distinct_bigram_scores(samples, count_empty=True)[1] == 0.0
    # an input left out (NaN) is left out of every bootstrap draw too: the mean of the terms that are there
    frame = pd.DataFrame({"score_teacher_dist": [np.nan if t is None else t for t in terms],
                          "hypothesis": ["h"] * 3, "references": [["r"]] * 3})
    d = decompose(frame, "teacher_dist", "", ev.distinct_bigram_percent(samples))
    assert d is not None
    assert d.resampled(np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]]))[0] == pytest.approx(75.0)


def counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bootstrap draws of ``n`` inputs (how often each is drawn; :func:`input_counts`'s distribution, faster)."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=DRAWS).astype(float)


def population(rng: np.random.Generator, candidates: int, concentration: float, size: int = 60):
    """Input types of one teacher: each a few candidate outputs (token lists) and the teacher's probabilities."""
    out = []
    for _ in range(size):
        texts = [[f"w{t}" for t in rng.integers(0, 8, rng.integers(2, 5))] for _ in range(candidates)]
        out.append((texts, rng.dirichlet(np.full(candidates, concentration))))
    return out


def exact_term(texts, probs) -> float:
    """E[TeacherDist term] of one input: every multiset of K samples, with its multinomial probability."""
    total = 0.0
    for combo in itertools.combinations_with_replacement(range(len(texts)), K):
        counts = np.bincount(combo, minlength=len(texts))
        p = math.factorial(K) / np.prod([math.factorial(c) for c in counts]) * np.prod(probs ** counts)
        total += p * ev.distinct_bigram_scores([[texts[c] for c in combo]])[0]
    return total


def teacher_row(rng, pop, counts) -> Replicates:
    """One replication of a teacher: INPUTS inputs drawn from its population, K samples each, its TeacherDist and
    the same recomputed on the bootstrap draws ``counts`` (the mean of the drawn terms, as :func:`decompose` gives
    it from examples.parquet: checked above)."""
    chosen = rng.integers(len(pop), size=INPUTS)
    cumulative = np.cumsum([pop[i][1] for i in chosen], axis=1)
    picks = (rng.random((INPUTS, K))[..., None] > cumulative[:, None, :]).sum(-1)
    samples = [[pop[i][0][min(c, len(pop[i][0]) - 1)] for c in row] for i, row in zip(chosen, picks)]
    terms = np.array(ev.distinct_bigram_scores(samples), dtype=float)
    return Replicates.of([terms.mean()], (counts @ terms) / counts.sum(1), fixed=True)


def test_teacher_dist_difference_covers_the_exact_difference():
    rng = np.random.default_rng(7)
    low, high = population(rng, 3, 0.7), population(rng, 4, 2.0)   # the second teacher's samples disagree more
    truth = np.mean([exact_term(*x) for x in high]) - np.mean([exact_term(*x) for x in low])
    covered, estimates, ses = 0, [], []
    for _ in range(REPLICATIONS):
        # each teacher on its own inputs: independent draws, as the report's independent streams
        a = teacher_row(rng, high, counts(rng, INPUTS))
        b = teacher_row(rng, low, counts(rng, INPUTS))
        d = teacher_dist_difference(a, b)
        covered += d.low <= truth <= d.high
        estimates.append(d.estimate)
        ses.append(d.model.se)
    assert 0.91 <= covered / REPLICATIONS <= 0.99
    # the bootstrap's standard error is the estimate's spread over replications (brute force)
    assert np.mean(ses) == pytest.approx(np.std(estimates, ddof=1), rel=0.15)


def decoding_replications(decodings: int, rng: np.random.Generator, replications: int = 300) -> float:
    """Coverage of teacher − MLE: per input i, y = μ + v_i + w_i + e (v: shared difficulty, w: the model's own, e:
    one sample's noise, sd 3 — the decoding noise of a sampled teacher); MLE over 3 seeds with seed effects u."""
    m, mu_t, mu_m = 60, 40.0, 37.0
    covered = 0
    for _ in range(replications):
        v = rng.normal(0, 2, m)
        teacher = mu_t + v + rng.normal(0, 1, m) + rng.normal(0, 3, (decodings, m))
        mle = mu_m + v + rng.normal(0, 1, m) + rng.normal(0, 0.5, (3, 1)) + rng.normal(0, 1.5, (3, m))
        drawn = counts(rng, m)   # one draw of inputs shared by both rows
        t = Replicates.of(teacher.mean(1), (drawn @ teacher.T) / m, fixed=decodings == 1)
        s = Replicates.of(mle.mean(1), (drawn @ mle.T) / m)
        d = noise.difference(t, s)
        covered += d.low <= mu_t - mu_m <= d.high
    return covered / replications


@pytest.mark.parametrize("decodings", [1, 4])
def test_sampled_teacher_scores_cover_the_true_difference(decodings):
    assert 0.92 <= decoding_replications(decodings, np.random.default_rng(decodings)) <= 0.985


def test_a_teacher_taken_as_exact_under_covers():
    """What the intervals replace: the sampled teacher as an exact value (no input part of its own) misses the
    truth far more often than 5%."""
    rng, m, missed = np.random.default_rng(3), 60, 0
    for _ in range(200):
        teacher = 40.0 + rng.normal(0, 3.2, m)
        mle = 37.0 + rng.normal(0, 0.5, (3, 1)) + rng.normal(0, 1.8, (3, m))
        d = noise.difference(Replicates.of([teacher.mean()], fixed=True), Replicates.of(mle.mean(1)))
        missed += not (d.low <= 3.0 <= d.high)
    assert missed / 200 > 0.10

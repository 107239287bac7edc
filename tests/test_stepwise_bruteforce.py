"""The step-wise decompositions of PAPER.md §1 against brute-force enumeration.

A tiny autoregressive teacher p and student q over a 3-token vocabulary plus EOS,
sequences of at most 3 tokens (EOS forced after that), with arbitrary next-token
logits for every prefix. Every sequence is enumerated, so the sequence-level
divergences are exact, and so are the expectations of the step-wise sums.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from harness.methods import divergences as div

VOCAB, EOS, MAX_LEN = 3, 3, 3   # tokens 0..2, EOS = 3


def random_lm(seed: int, scale: float = 2.0):
    """next-token logits for every prefix (tuple of tokens without EOS); EOS forced at MAX_LEN."""
    g = torch.Generator().manual_seed(seed)
    table = {}
    for length in range(MAX_LEN + 1):
        for prefix in itertools.product(range(VOCAB), repeat=length):
            logits = torch.randn(VOCAB + 1, generator=g, dtype=torch.float64) * scale
            if length == MAX_LEN:
                logits = torch.full((VOCAB + 1,), -1e9, dtype=torch.float64)
                logits[EOS] = 0.0
            table[prefix] = logits
    return table


def sequences():
    """All complete sequences: up to MAX_LEN tokens, then EOS."""
    for length in range(MAX_LEN + 1):
        for body in itertools.product(range(VOCAB), repeat=length):
            yield body + (EOS,)


def log_prob(lm, seq) -> float:
    total = 0.0
    for t, token in enumerate(seq):
        total += float(torch.log_softmax(lm[seq[:t]], -1)[token])
    return total


def prefix_weights(lm):
    """P(prefix is reached) for every unfinished prefix, under ``lm``."""
    weights = {}
    for prefix in lm:
        weights[prefix] = math.exp(log_prob(lm, prefix)) if prefix else 1.0
    return weights


def stepwise_expectation(sampler, p, q, fn) -> float:
    """E_{y~sampler} Σ_t fn(q_t, p_t), computed exactly over all reachable prefixes."""
    total = 0.0
    for prefix, weight in prefix_weights(sampler).items():
        total += weight * float(fn(q[prefix].unsqueeze(0), p[prefix].unsqueeze(0))[0])
    return total


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sequences_sum_to_one(seed):
    lm = random_lm(seed)
    assert sum(math.exp(log_prob(lm, s)) for s in sequences()) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_stepwise_kl_equals_sequence_kl(seed):
    p, q = random_lm(seed), random_lm(seed + 100)
    sequence_kl = sum(math.exp(log_prob(p, y)) * (log_prob(p, y) - log_prob(q, y)) for y in sequences())
    stepwise = stepwise_expectation(p, p, q, div.forward_kl)
    assert sequence_kl > 0.05
    assert stepwise == pytest.approx(sequence_kl, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_stepwise_rkl_equals_sequence_rkl(seed):
    p, q = random_lm(seed), random_lm(seed + 100)
    sequence_rkl = sum(math.exp(log_prob(q, y)) * (log_prob(q, y) - log_prob(p, y)) for y in sequences())
    stepwise = stepwise_expectation(q, p, q, div.reverse_kl)
    assert sequence_rkl > 0.05
    assert stepwise == pytest.approx(sequence_rkl, rel=1e-9, abs=1e-12)
    # ...and the forward-KL step-wise sum under student prefixes is NOT the reverse KL:
    # the decomposition depends on which distribution the prefixes come from.
    assert stepwise_expectation(q, p, q, div.forward_kl) != pytest.approx(sequence_rkl, rel=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 6, 7])
def test_stepwise_tvd_bounds_sequence_tvd(seed):
    p, q = random_lm(seed), random_lm(seed + 100)
    sequence_tvd = 0.5 * sum(abs(math.exp(log_prob(p, y)) - math.exp(log_prob(q, y))) for y in sequences())
    on_teacher = stepwise_expectation(p, p, q, div.total_variation)
    on_student = stepwise_expectation(q, p, q, div.total_variation)
    assert 0 < sequence_tvd <= 1
    assert on_teacher >= sequence_tvd - 1e-12
    assert on_student >= sequence_tvd - 1e-12
    assert 0.5 * (on_teacher + on_student) >= sequence_tvd - 1e-12


def test_stepwise_tvd_bound_is_not_an_equality():
    """The bound is strict in general (so the test above is not vacuous)."""
    p, q = random_lm(11), random_lm(111)
    sequence_tvd = 0.5 * sum(abs(math.exp(log_prob(p, y)) - math.exp(log_prob(q, y))) for y in sequences())
    assert stepwise_expectation(p, p, q, div.total_variation) > sequence_tvd + 1e-3


def test_identical_models_give_zero_everywhere():
    p = random_lm(5)
    for fn in (div.forward_kl, div.reverse_kl, div.total_variation):
        assert stepwise_expectation(p, p, p, fn) == pytest.approx(0.0, abs=1e-12)

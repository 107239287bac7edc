"""The top-k form of the teacher's distributions (:mod:`harness.methods.topk`): exact at k = V for every
divergence and every registered method that reads the store, and the documented approximation below."""

from __future__ import annotations

import math

import pytest
import torch

from harness.methods import divergences as div
from harness.methods.topk import dense_log_probs, top_k
from harness.registry import METHODS

VOCAB = 37

#: every per-token divergence a method computes on teacher prefixes, as (student logits, teacher logits) → [B, T]
TEACHER_PREFIX_DIVERGENCES = {
    "forward_kl": div.forward_kl,
    "js_teacher_half": lambda s, t: div.kl_to_mixture(s, t, 0.85, "teacher"),
    "total_variation": div.total_variation,
    "engine_cross_entropy": div.teacher_cross_entropy,
    "wordkd_tempered_kl": lambda s, t: div.forward_kl(s / 2.0, t / 2.0) * 4.0,
    "akl": lambda s, t: div.adaptive_kl(s, t, 0.5),
    "gkd_jsd": lambda s, t: div.generalized_jsd(s, t, 0.5),
    "skew_kl": lambda s, t: div.skew_kl(s, t, 0.1),
    "skew_reverse_kl": lambda s, t: div.skew_reverse_kl(s, t, 0.1),
    "reverse_kl": div.reverse_kl,
}


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal to 1e-6, relative where the values exceed 1 (float32 keeps about 7 digits: 1e-6 of a loss of 10
    is below its last bit)."""
    return bool(((a - b).abs() <= 1e-6 * b.abs().clamp_min(1.0)).all())


def logits(seed: int, shape=(3, 5, VOCAB), scale: float = 3.0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def test_full_vocabulary_is_exact():
    teacher = logits(0)
    dense = dense_log_probs(top_k(teacher, VOCAB))
    assert torch.equal(dense, torch.log_softmax(teacher, -1))


@pytest.mark.parametrize("name", list(TEACHER_PREFIX_DIVERGENCES))
def test_divergence_at_k_equal_v_matches_full(name):
    fn = TEACHER_PREFIX_DIVERGENCES[name]
    student, teacher = logits(1), logits(2)
    full = fn(student, teacher)
    stored = fn(student, dense_log_probs(top_k(teacher, VOCAB)))
    assert close(stored, full)
    assert full.abs().max() > 1e-3    # not a vacuous comparison


def test_sequence_mixture_teacher_half_at_k_equal_v():
    student, teacher = logits(3), logits(4)
    tokens = torch.randint(0, VOCAB, (3, 5), generator=torch.Generator().manual_seed(5))
    full = div.kl_to_sequence_mixture(student, teacher, tokens, 0.85, "teacher")
    stored = div.kl_to_sequence_mixture(student, dense_log_probs(top_k(teacher, VOCAB)), tokens, 0.85, "teacher")
    assert close(stored, full)


def store_readers():
    """Every registered method (default parameters) whose loss may read the store, with the sources it reads."""
    out = []
    for name in METHODS.names():
        method = METHODS.get(name)()
        if method.stored_teacher_sources:
            out.append((name, method))
    return out


def test_store_readers_are_the_expected_ones():
    names = {name for name, _ in store_readers()}
    assert {"js", "tvd", "wordkd", "akl", "gkd", "js_exact"} <= names
    assert not {"predistill", "mle", "seqkd", "kl", "rkl", "engine"} & names   # hidden states / no fixed prefix


@pytest.mark.parametrize("name,method", store_readers())
def test_method_token_loss_and_gradient_at_k_equal_v(name, method):
    student = logits(6).requires_grad_(True)
    teacher = logits(7)
    tokens = torch.randint(0, VOCAB, (3, 5), generator=torch.Generator().manual_seed(8))
    for source in method.stored_teacher_sources:
        full = method.token_loss(student, teacher, tokens, source)
        (grad_full,) = torch.autograd.grad(full.sum(), student)
        stored = method.token_loss(student, dense_log_probs(top_k(teacher, VOCAB)), tokens, source)
        (grad_stored,) = torch.autograd.grad(stored.sum(), student)
        assert close(stored, full), (name, source)
        assert close(grad_stored, grad_full), (name, source)


@pytest.mark.parametrize("k", [1, 4, VOCAB - 1])
def test_below_v_the_tail_is_spread_uniformly(k):
    """Brute force: p̃ keeps the top-k probabilities and gives each other token r / (V − k)."""
    teacher = logits(9, shape=(2, 3, VOCAB)).double()
    p = torch.softmax(teacher, -1)
    dense = dense_log_probs(top_k(teacher, k)).exp()
    for b in range(2):
        for t in range(3):
            ranked = sorted(range(VOCAB), key=lambda v: -p[b, t, v].item())
            top, rest = ranked[:k], ranked[k:]
            tail = sum(p[b, t, v].item() for v in rest)
            for v in top:
                assert math.isclose(dense[b, t, v].item(), p[b, t, v].item(), rel_tol=1e-6)
            for v in rest:
                assert math.isclose(dense[b, t, v].item(), tail / (VOCAB - k), rel_tol=1e-6)
    assert torch.allclose(dense.sum(-1), torch.ones(2, 3, dtype=dense.dtype), atol=1e-6)


@pytest.mark.parametrize("name", list(TEACHER_PREFIX_DIVERGENCES))
def test_every_divergence_is_finite_below_v(name):
    student, teacher = logits(10), logits(11, scale=30.0)   # a peaked teacher: a tiny tail
    value = TEACHER_PREFIX_DIVERGENCES[name](student, dense_log_probs(top_k(teacher, 2)))
    assert torch.isfinite(value).all()

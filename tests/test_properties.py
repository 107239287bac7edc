"""Property tests of every registered method with divergence semantics, over random logits, masks and vocabularies.

The methods are read from the registry, so a method added later is covered without
editing this file; a method whose loss is not a divergence must be listed in
``NOT_DIVERGENCES`` with the reason. The checks themselves live in
:mod:`harness.testing` (the helpers plugin authors use).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.methods import divergences as div
from harness.errors import HarnessError
from harness.registry import METHODS
from harness.testing import check_engine_step, check_token_loss, make_method, random_logits, tiny_models

NOT_DIVERGENCES = {
    "mle": "−log q(y_t) on references: a likelihood, not a distance to the teacher (never 0)",
    "seqkd": "−log q(y_t) on teacher outputs: cross-entropy to the teacher's mode (never 0)",
    "engine": "−Σ q log p omits the student entropy: not 0 when q = p",
    "predistill": "adds −log q(y_t) and a hidden-state MSE: not 0 when q = p",
}
DIVERGENCES = [name for name in METHODS.names() if name not in NOT_DIVERGENCES]


def test_the_skip_list_names_registered_methods():
    assert set(NOT_DIVERGENCES) <= set(METHODS.names())
    assert {"kl", "rkl", "js", "tvd", "gkd", "js_exact"} <= set(DIVERGENCES)


@pytest.mark.parametrize("name", DIVERGENCES)
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 4), length=st.integers(1, 7), vocab=st.integers(2, 40),
       scale=st.floats(0.05, 12.0))
def test_divergence_properties(name, seed, batch, length, vocab, scale):
    """≥ 0, 0 when q = p, rows independent of padding and of each other (any micro-batch split), gradient into q."""
    check_token_loss(make_method(name), seed=seed, batch=batch, length=length, vocab=vocab, scale=scale)


@pytest.fixture(scope="module")
def models():
    return tiny_models()


@pytest.mark.parametrize("name", METHODS.names())
def test_engine_step_sends_gradients_only_into_the_student(models, name):
    """Every registered method, divergence or not: finite positive step loss, teacher untouched, padding-invariant."""
    check_engine_step(make_method(name), models)


# --------------------------------------------------------------------------- known endpoints
pairs = st.builds(lambda seed, vocab, scale: random_logits(seed, (2, 3, vocab), scale),
                  st.integers(0, 10_000), st.integers(2, 30), st.floats(0.05, 12.0))
TOKENS = torch.zeros(2, 3, dtype=torch.long)


@settings(max_examples=25, deadline=None)
@given(logits=pairs)
def test_gkd_endpoints_are_kl_and_rkl(logits):
    student, teacher = logits
    gkd0, gkd1 = make_method("gkd", {"beta": 0.0}), make_method("gkd", {"beta": 1.0})
    kl, rkl = make_method("kl"), make_method("rkl")
    for source in ("student_sample", "ground_truth"):
        assert torch.allclose(gkd0.token_loss(student, teacher, TOKENS, source),
                              kl.token_loss(student, teacher, TOKENS, "teacher_sample"), atol=1e-10)
        assert torch.allclose(gkd1.token_loss(student, teacher, TOKENS, source),
                              rkl.token_loss(student, teacher, TOKENS, "student_sample"), atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(logits=pairs, beta=st.floats(0.01, 0.99))
def test_gkd_interior_is_js_with_the_weights_swapped(logits, beta):
    """TRL's M = β·p + (1−β)·q is the paper's m with β_js = 1 − β; both halves on the same prefix."""
    student, teacher = logits
    gkd = div.generalized_jsd(student, teacher, beta)
    js = beta * div.kl_to_mixture(student, teacher, 1 - beta, "teacher") \
        + (1 - beta) * div.kl_to_mixture(student, teacher, 1 - beta, "student")
    assert torch.allclose(gkd, js, atol=1e-8)
    assert (gkd <= torch.log(torch.tensor(2.0, dtype=gkd.dtype)) + 1e-9).all()   # JSD(β) ≤ h(β) ≤ log 2


@settings(max_examples=25, deadline=None)
@given(logits=pairs)
def test_skew_endpoints(logits):
    """α = 0: skl is kl and srkl is rkl per token; α = 1: the mixture is the other side itself, so 0."""
    student, teacher = logits
    pairs_ = (("skl", "kl", "teacher_sample"), ("srkl", "rkl", "student_sample"))
    for skew, plain, source in pairs_:
        assert torch.allclose(make_method(skew, {"alpha": 0.0}).token_loss(student, teacher, TOKENS, source),
                              make_method(plain).token_loss(student, teacher, TOKENS, source), atol=1e-10)
        assert make_method(skew, {"alpha": 1.0}).token_loss(student, teacher, TOKENS, source).abs().max() < 1e-10
    # the skew bounds the loss: KL(p‖αp + (1−α)q) ≤ log(1/α)
    assert (div.skew_kl(student, teacher, 0.1) <= torch.log(torch.tensor(10.0, dtype=student.dtype)) + 1e-9).all()


@settings(max_examples=25, deadline=None)
@given(logits=pairs, temperature=st.floats(0.5, 4.0))
def test_wordkd_is_temperature_scaled_forward_kl(logits, temperature):
    student, teacher = logits
    got = make_method("wordkd", {"temperature": temperature}).token_loss(student, teacher, TOKENS, "ground_truth")
    want = temperature ** 2 * div.forward_kl(student / temperature, teacher / temperature)
    assert torch.allclose(got, want, atol=1e-10)


def _akl_by_hand(q: torch.Tensor, p: torch.Tensor, mu: float) -> float:
    """One distribution pair, with Python loops: the head is the top tokens up to cumulative mass μ (at least one)."""
    order = sorted(range(len(p)), key=lambda v: -float(p[v]))
    head, mass = [], 0.0
    for rank, v in enumerate(order):
        mass += float(p[v])
        if rank == 0 or mass <= mu + 1e-6:   # the same rounding slack as the implementation
            head.append(v)
        else:
            break
    g_head = sum(abs(float(p[v] - q[v])) for v in head)
    g_tail = sum(abs(float(p[v] - q[v])) for v in range(len(p)) if v not in head)
    fkl = float((p * (p / q).log()).sum())
    rkl = float((q * (q / p).log()).sum())
    return (g_head * fkl + g_tail * rkl) / (g_head + g_tail)


@settings(max_examples=25, deadline=None)
@given(logits=pairs, mu=st.floats(0.0, 1.0))
@example(logits=(random_logits(0, (2, 3, 4), 2.0)), mu=1.0)   # μ = 1: all mass is head, whatever the rounding
def test_akl_matches_its_definition(logits, mu):
    student, teacher = logits
    got = div.adaptive_kl(student, teacher, mu)
    q, p = student.softmax(-1), teacher.softmax(-1)
    for b in range(2):
        for t in range(3):
            assert float(got[b, t]) == pytest.approx(_akl_by_hand(q[b, t], p[b, t], mu), rel=1e-7, abs=1e-10)
    fkl, rkl = div.forward_kl(student, teacher), div.reverse_kl(student, teacher)
    assert (got >= torch.minimum(fkl, rkl) - 1e-10).all() and (got <= torch.maximum(fkl, rkl) + 1e-10).all()


def test_akl_weights_carry_no_gradient():
    """d/dq of AKL = w_head·∇KL(p‖q) + (1−w_head)·∇KL(q‖p) with the weights held fixed."""
    student, teacher = random_logits(5, (2, 3, 9))
    s = student.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(div.adaptive_kl(s, teacher, 0.5).sum(), s)
    s2 = student.clone().requires_grad_(True)
    with torch.no_grad():
        w = (div.adaptive_kl(student, teacher, 0.5) - div.reverse_kl(student, teacher)) \
            / (div.forward_kl(student, teacher) - div.reverse_kl(student, teacher))
    fixed = w * div.forward_kl(s2, teacher) + (1 - w) * div.reverse_kl(s2, teacher)
    (want,) = torch.autograd.grad(fixed.sum(), s2)
    assert torch.allclose(grad, want, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(logits=pairs)
def test_online_variants_share_the_token_loss_of_their_offline_twins(logits):
    student, teacher = logits
    for online, offline, beta in (("js_online", "js", 0.85), ("tvd_online", "tvd", None)):
        params = {"beta": beta} if beta is not None else None
        a, b = make_method(online, params), make_method(offline, params)
        for src_a, src_b in (("student_sample", "student_sample"), ("teacher_sample", "teacher_offline")):
            assert torch.equal(a.token_loss(student, teacher, TOKENS, src_a), b.token_loss(student, teacher, TOKENS, src_b))


# --------------------------------------------------------------------------- declarations and parameters
def test_prefix_declarations_of_the_new_methods():
    assert make_method("wordkd").prefix_weights() == {"ground_truth": 1.0}
    assert make_method("akl").prefix_weights() == {"ground_truth": 1.0}
    assert make_method("skl").prefix_weights() == {"teacher_sample": 1.0}
    assert make_method("srkl").prefix_weights() == {"student_sample": 1.0}
    assert make_method("gkd").prefix_weights() == {"student_sample": 0.5, "ground_truth": 0.5}
    assert make_method("gkd", {"lmbda": 1.0}).prefix_weights() == {"student_sample": 1.0}
    assert make_method("gkd", {"lmbda": 0.0, "off_policy": "teacher_offline"}).prefix_weights() == {"teacher_offline": 1.0}
    js_online = make_method("js_online")                     # the task's β (DART: 0.85)
    assert js_online.prefix_weights() == pytest.approx({"student_sample": 0.85, "teacher_sample": 0.15})
    assert make_method("tvd_online").prefix_weights() == {"teacher_sample": 0.5, "student_sample": 0.5}
    assert make_method("js_exact").prefix_weights() == pytest.approx({"student_sample": 0.85, "teacher_offline": 0.15})
    assert make_method("js_exact", {"teacher_source": "teacher_sample"}).prefix_weights() \
        == pytest.approx({"student_sample": 0.85, "teacher_sample": 0.15})


@pytest.mark.parametrize("name,params", [
    ("gkd", {"beta": "1.5"}), ("gkd", {"lmbda": "-0.1"}), ("gkd", {"off_policy": "student_greedy"}),
    ("skl", {"alpha": "2"}), ("srkl", {"alpha": "-1"}), ("akl", {"mu": "1.5"}), ("wordkd", {"temperature": "0"}),
    ("js_online", {"beta": "1.2"}), ("js_exact", {"teacher_source": "ground_truth"}),
])
def test_bad_parameters_are_harness_errors(name, params):
    with pytest.raises(HarnessError, match=next(iter(params))):
        make_method(name, params)

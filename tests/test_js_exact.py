"""``js_exact`` against brute-force enumeration: its step-wise loss sums to the sequence-level JS_β.

On a tiny autoregressive teacher p and student q (3 tokens + EOS, at most 3 tokens) every
sequence is listed, so expectations are exact. With M = β·q + (1−β)·p over sequences,

    β·E_{y~q} Σ_t KL(q_t‖m_t) + (1−β)·E_{y~p} Σ_t KL(p_t‖m_t) = β·KL(q‖M) + (1−β)·KL(p‖M),

when m_t is the next-token distribution of M on y_<t (js_exact), and not when m_t is the
per-step average β·q_t + (1−β)·p_t (js, what the paper ran).
"""

from __future__ import annotations

import math

import pytest
import torch

from harness.methods import divergences as div
from harness.methods.base import Method
from harness.testing import EnumerableLM, expected_loss_sum, expected_method_loss, make_method, sequence_js, sequence_kl


def mixture_lm_kl(a: EnumerableLM, q: EnumerableLM, p: EnumerableLM, beta: float) -> torch.Tensor:
    """KL(a‖M), M = β·q + (1−β)·p over sequences, by enumeration."""
    total = torch.zeros((), dtype=torch.float64)
    for y in a.sequences():
        la = a.log_prob(y)
        lm = torch.logaddexp(q.log_prob(y) + math.log(beta), p.log_prob(y) + math.log1p(-beta))
        total = total + la.exp() * (la - lm)
    return total


@pytest.mark.parametrize("seed,beta", [(0, 0.5), (1, 0.85), (2, 0.25), (3, 0.5)])
def test_stepwise_loss_sums_to_sequence_js(seed, beta):
    q, p = EnumerableLM(seed), EnumerableLM(seed + 100)
    exact = expected_method_loss(make_method("js_exact", {"beta": beta}), q, p)
    target = sequence_js(q, p, beta)
    assert float(target) > 0.02
    assert float(exact) == pytest.approx(float(target), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", [4, 5])
def test_each_half_is_exact(seed):
    """Student half = KL(q‖M) on student samples, teacher half = KL(p‖M) on teacher samples."""
    beta = 0.6
    q, p = EnumerableLM(seed), EnumerableLM(seed + 100)
    method = make_method("js_exact", {"beta": beta})
    student_half = expected_loss_sum(method, "student_sample", q, q, p)
    teacher_half = expected_loss_sum(method, "teacher_offline", p, q, p)
    assert float(student_half) == pytest.approx(float(mixture_lm_kl(q, q, p, beta)), rel=1e-9)
    assert float(teacher_half) == pytest.approx(float(mixture_lm_kl(p, q, p, beta)), rel=1e-9)


def test_per_step_js_is_strictly_different():
    """The paper's per-step mixture does not give the sequence-level JS; the exact mixture does."""
    beta = 0.5
    q, p = EnumerableLM(11), EnumerableLM(111)
    target = float(sequence_js(q, p, beta))
    per_step = float(expected_method_loss(make_method("js", {"beta": beta}), q, p))
    exact = float(expected_method_loss(make_method("js_exact", {"beta": beta}), q, p))
    assert exact == pytest.approx(target, rel=1e-9)
    assert abs(per_step - target) > 1e-2 * target     # a clear, not a rounding, difference
    # JS_½ of the sequence distributions is at most log 2, whatever the models
    assert 0 < target <= math.log(2)


class _TeacherHalf(Method):
    """KL(p_t‖m_t) on teacher samples, with or without the gradient through w_t."""

    prefixes = {"teacher_sample": 1.0}

    def __init__(self, beta: float, weight_grad: bool):
        super().__init__()
        self.beta, self.weight_grad = beta, weight_grad

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return div.kl_to_sequence_mixture(student_logits, teacher_logits, tokens, self.beta, "teacher",
                                          weight_grad=self.weight_grad)


def test_gradient_through_the_weight_is_the_exact_gradient():
    """On teacher prefixes the step-wise loss IS KL(p‖M_θ) for every θ, so its gradient is exact —
    only if the gradient also flows through w_t (the student's prefix probability)."""
    beta = 0.7
    q, p = EnumerableLM(21, requires_grad=True), EnumerableLM(121)
    exact_grad = torch.autograd.grad(mixture_lm_kl(p, q, p, beta), q.parameters())
    for weight_grad, should_match in ((True, True), (False, False)):
        loss = expected_loss_sum(_TeacherHalf(beta, weight_grad), "teacher_sample", p, q, p)
        grad = torch.autograd.grad(loss, q.parameters())
        err = max(float((a - b).abs().max()) for a, b in zip(grad, exact_grad))
        assert (err < 1e-12) == should_match, (weight_grad, err)


def test_first_step_equals_per_step_js_and_later_steps_do_not():
    """At t = 0 the prefix is empty, so w_0 = β and the exact mixture is js's; later it moves."""
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 5, 7, generator=g, dtype=torch.float64) * 2, \
        torch.randn(2, 5, 7, generator=g, dtype=torch.float64) * 2
    tokens = torch.randint(0, 7, (2, 5), generator=g)
    for side in ("student", "teacher"):
        exact = div.kl_to_sequence_mixture(student, teacher, tokens, 0.85, side)
        per_step = div.kl_to_mixture(student, teacher, 0.85, side)
        assert torch.allclose(exact[:, 0], per_step[:, 0], atol=1e-8)
        assert not torch.allclose(exact[:, 1:], per_step[:, 1:], atol=1e-4)


def test_weight_matches_a_direct_computation_of_prefix_probabilities():
    g = torch.Generator().manual_seed(3)
    student, teacher = torch.randn(3, 6, 5, generator=g, dtype=torch.float64), \
        torch.randn(3, 6, 5, generator=g, dtype=torch.float64)
    tokens = torch.randint(0, 5, (3, 6), generator=g)
    beta = 0.3
    q, p = student.softmax(-1), teacher.softmax(-1)
    q_tok, p_tok = q.gather(-1, tokens[..., None])[..., 0], p.gather(-1, tokens[..., None])[..., 0]
    q_prefix = torch.cat([torch.ones(3, 1, dtype=q.dtype), q_tok.cumprod(-1)[:, :-1]], dim=1)
    p_prefix = torch.cat([torch.ones(3, 1, dtype=p.dtype), p_tok.cumprod(-1)[:, :-1]], dim=1)
    w = (beta * q_prefix / (beta * q_prefix + (1 - beta) * p_prefix)).unsqueeze(-1)
    m = w * q + (1 - w) * p
    expected = (p * (p / m).log()).sum(-1)
    assert torch.allclose(div.kl_to_sequence_mixture(student, teacher, tokens, beta, "teacher"), expected, atol=1e-10)
    assert torch.allclose(div.prefix_log_ratio(student, teacher, tokens), (q_prefix / p_prefix).log(), atol=1e-10)


def test_long_prefixes_and_half_precision_stay_finite():
    """Prefix log-ratios of hundreds of nats saturate w_t to 0 or 1 without overflow."""
    g = torch.Generator().manual_seed(7)
    student, teacher = torch.randn(2, 300, 11, generator=g) * 8, torch.randn(2, 300, 11, generator=g) * 8
    tokens = torch.randint(0, 11, (2, 300), generator=g)
    assert div.prefix_log_ratio(student, teacher, tokens).abs().max() > 100
    for logits in ((student, teacher), (student.bfloat16(), teacher.bfloat16())):
        s = logits[0].clone().requires_grad_(True)
        for side in ("student", "teacher"):
            loss = div.kl_to_sequence_mixture(s, logits[1], tokens, 0.5, side)
            assert loss.dtype == torch.float32 and torch.isfinite(loss).all() and (loss >= -1e-5).all()
            (grad,) = torch.autograd.grad(loss.sum(), s)
            assert torch.isfinite(grad.float()).all()


@pytest.mark.parametrize("beta,source", [(0.0, "teacher_offline"), (1.0, "student_sample")])
def test_beta_endpoints(beta, source):
    """β = 0 makes M = p and β = 1 makes M = q: JS_β is 0 and only the weighted side's prefixes are declared."""
    q, p = EnumerableLM(8), EnumerableLM(108)
    method = make_method("js_exact", {"beta": beta})
    assert method.prefix_weights() == {source: 1.0}
    assert float(expected_method_loss(method, q, p)) == pytest.approx(0.0, abs=1e-12)


def test_identical_models_give_zero():
    p = EnumerableLM(9)
    assert float(expected_method_loss(make_method("js_exact", {"beta": 0.85}), p, p)) == pytest.approx(0, abs=1e-12)
    assert float(sequence_kl(p, p)) == pytest.approx(0, abs=1e-12)


def test_student_side_loss_falls_as_the_mixture_weight_rises():
    """KL(q_t‖m_t) is non-increasing in w_t (m_t moves towards q_t). So on the student's own
    samples the path through w_t = σ(log β/(1−β) + log q(y_<t) − log p(y_<t)) only pushes the
    student's probability of its sampled prefix up: js_exact stops that path there."""
    g = torch.Generator().manual_seed(12)
    student, teacher = torch.randn(3, 6, 9, generator=g, dtype=torch.float64) * 2, \
        torch.randn(3, 6, 9, generator=g, dtype=torch.float64) * 2
    tokens = torch.randint(0, 9, (3, 6), generator=g)
    losses = [div.kl_to_sequence_mixture(student, teacher, tokens, beta, "student") for beta in (0.1, 0.4, 0.7, 0.95)]
    for lower, higher in zip(losses, losses[1:]):
        assert (higher <= lower + 1e-12).all()
    assert (losses[-1] < losses[0] - 1e-3).any()   # and it does fall


def test_method_stops_the_weight_gradient_on_student_samples_only():
    beta = 0.6
    q, p = EnumerableLM(31, requires_grad=True), EnumerableLM(131)
    method = make_method("js_exact", {"beta": beta})

    def grads(loss):
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, q.parameters())])

    class Half(Method):
        prefixes = {"student_sample": 1.0}

        def __init__(self, weight_grad):
            super().__init__()
            self.weight_grad = weight_grad

        def token_loss(self, student_logits, teacher_logits, tokens, source):
            return div.kl_to_sequence_mixture(student_logits, teacher_logits, tokens, beta, "student",
                                              weight_grad=self.weight_grad)

    # student half: the method's gradient is the stopped one, not the one through w_t
    on_student = grads(expected_loss_sum(method, "student_sample", q, q, p))
    assert torch.allclose(on_student, grads(expected_loss_sum(Half(False), "student_sample", q, q, p)), atol=1e-12)
    assert not torch.allclose(on_student, grads(expected_loss_sum(Half(True), "student_sample", q, q, p)), atol=1e-6)
    # teacher half: still the exact gradient of KL(p‖M)
    on_teacher = grads(expected_loss_sum(method, "teacher_offline", p, q, p))
    assert torch.allclose(on_teacher, grads(mixture_lm_kl(p, q, p, beta)), atol=1e-12)
    # the old behaviour stays reachable
    old = make_method("js_exact", {"beta": beta, "student_weight_grad": True})
    assert torch.allclose(grads(expected_loss_sum(old, "student_sample", q, q, p)),
                          grads(expected_loss_sum(Half(True), "student_sample", q, q, p)), atol=1e-12)

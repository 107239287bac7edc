"""Properties of every per-token divergence and of each method's token loss."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.methods import divergences as div
from harness.registry import METHODS

DIVERGENCES = {
    "forward_kl": div.forward_kl,
    "reverse_kl": div.reverse_kl,
    "total_variation": div.total_variation,
    "js_student_side": lambda s, t: div.kl_to_mixture(s, t, 0.85, "student"),
    "js_teacher_side": lambda s, t: div.kl_to_mixture(s, t, 0.25, "teacher"),
}


def logits_pair(seed: int, vocab: int, scale: float):
    g = torch.Generator().manual_seed(seed)
    shape = (3, 4, vocab)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale,
            torch.randn(shape, generator=g, dtype=torch.float64) * scale)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), vocab=st.integers(2, 50), scale=st.floats(0.01, 20.0))
@pytest.mark.parametrize("name", list(DIVERGENCES))
def test_nonnegative_and_zero_on_equal(name, seed, vocab, scale):
    fn = DIVERGENCES[name]
    student, teacher = logits_pair(seed, vocab, scale)
    assert (fn(student, teacher) >= -1e-9).all()
    assert fn(teacher.clone(), teacher).abs().max() < 1e-7


def test_known_values():
    # p = (1/2, 1/2), q = (1/4, 3/4) on two tokens
    teacher = torch.log(torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    student = torch.log(torch.tensor([[0.25, 0.75]], dtype=torch.float64))
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    assert float(div.forward_kl(student, teacher)) == pytest.approx(float((p * (p / q).log()).sum()))
    assert float(div.reverse_kl(student, teacher)) == pytest.approx(float((q * (q / p).log()).sum()))
    assert float(div.total_variation(student, teacher)) == pytest.approx(0.25)
    m = 0.5 * p + 0.5 * q
    assert float(div.kl_to_mixture(student, teacher, 0.5, "student")) == pytest.approx(float((q * (q / m).log()).sum()))
    assert float(div.kl_to_mixture(student, teacher, 0.5, "teacher")) == pytest.approx(float((p * (p / m).log()).sum()))
    assert float(div.teacher_cross_entropy(student, teacher)) == pytest.approx(float(-(q * p.log()).sum()))


def test_js_with_beta_half_is_jensen_shannon():
    student, teacher = logits_pair(3, 7, 2.0)
    js = 0.5 * div.kl_to_mixture(student, teacher, 0.5, "student") + 0.5 * div.kl_to_mixture(student, teacher, 0.5, "teacher")
    p, q = teacher.softmax(-1), student.softmax(-1)
    m = 0.5 * (p + q)
    expected = 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)
    assert torch.allclose(js, expected, atol=1e-8)
    assert (js <= torch.log(torch.tensor(2.0)) + 1e-9).all()


@pytest.mark.parametrize("name", ["kl", "rkl", "js", "tvd", "engine", "predistill"])
def test_gradient_reaches_student_logits_only(name):
    """Methods that use teacher logits: the gradient flows into the student logits, never the teacher's."""
    method = METHODS.get(name)() if name != "js" else METHODS.get(name)({"beta": 0.85})
    student, teacher = logits_pair(0, 9, 1.0)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    tokens = torch.randint(0, 9, student.shape[:2])
    for source in method.prefix_weights():
        loss = method.token_loss(student, teacher.detach(), tokens, source).sum()
        (grad,) = torch.autograd.grad(loss, student)
        assert grad.abs().sum() > 0
        assert teacher.grad is None


def test_tvd_and_js_prefix_declarations_follow_the_paper():
    assert METHODS.get("tvd")().prefix_weights() == {"teacher_offline": 0.5, "student_sample": 0.5}
    js = METHODS.get("js")({"beta": 0.85}).prefix_weights()
    assert js["student_sample"] == pytest.approx(0.85) and js["teacher_offline"] == pytest.approx(0.15)
    assert METHODS.get("kl")().prefix_weights() == {"teacher_sample": 1.0}
    assert METHODS.get("rkl")().prefix_weights() == {"student_sample": 1.0}
    assert METHODS.get("seqkd")().prefix_weights() == {"teacher_offline": 1.0}
    assert METHODS.get("engine")().prefix_weights() == {"student_greedy": 1.0}
    assert METHODS.get("mle")().prefix_weights() == {"ground_truth": 1.0}

"""The fast step engine against the paper-structured reference mode.

Both modes must give the same loss and the same gradients for every registered
method (plugins included) and pre-distillation as the reference runs it, while the
fast one runs each encoder once and never scores the teacher's own samples a second
time.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from harness.step import bare, fast as fast_step, reference, step_loss
from harness.config import DecodeConfig
from harness.methods import Method
from harness.methods import divergences as div
from harness.lm import Seq2SeqLM
from harness.testing import make_method, method_cases, tiny_models

SINGLE_BEAM = DecodeConfig(num_beams=1, do_sample=True, top_k=8, max_new_tokens=7)
TWO_BEAMS = DecodeConfig(num_beams=2, do_sample=True, top_k=8, max_new_tokens=7)


@pytest.fixture(scope="module")
def models():
    student, teacher, layer_map, batch = tiny_models()
    student.model.train()  # as in training; dropout is 0, so no forward pass draws random numbers
    return student, teacher, layer_map, batch


def loss_and_grads(loss_fn, method, models, sampling, seed=3):
    student, teacher, layer_map, batch = models
    student.model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss, terms = loss_fn(method, student, teacher, batch, sampling, layer_map)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in student.model.named_parameters() if p.grad is not None}
    assert all(p.grad is None for p in teacher.model.parameters())
    return loss.detach(), {k: v.detach() for k, v in terms.items()}, grads


def assert_same(fast, ref):
    (loss_f, terms_f, grads_f), (loss_r, terms_r, grads_r) = fast, ref
    assert loss_f.item() > 1e-4
    assert abs(loss_f.item() - loss_r.item()) <= 1e-5, (loss_f.item(), loss_r.item())
    assert terms_f.keys() == terms_r.keys()
    for key in terms_f:
        assert abs(terms_f[key].item() - terms_r[key].item()) <= 1e-5, key
    assert grads_f.keys() == grads_r.keys() and grads_f
    for name in grads_f:
        assert torch.allclose(grads_f[name], grads_r[name], atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("sampling", [SINGLE_BEAM, TWO_BEAMS], ids=["1-beam", "2-beam"])
@pytest.mark.parametrize("case", method_cases())
def test_fast_and_reference_modes_agree(models, case, sampling):
    """Same loss, same terms, same gradients (1e-5) for every registered method and variant."""
    method = make_method(*method_cases()[case])
    fast = loss_and_grads(fast_step.method_loss, method, models, sampling)
    ref = loss_and_grads(reference.reference_loss, method, models, sampling)
    assert_same(fast, ref)


def test_modes_differ_when_the_samples_differ(models):
    """The agreement above is not vacuous: another seed draws other samples and another loss."""
    method = make_method("kl")
    a = loss_and_grads(fast_step.method_loss, method, models, SINGLE_BEAM, seed=3)
    b = loss_and_grads(reference.reference_loss, method, models, SINGLE_BEAM, seed=4)
    assert abs(a[0].item() - b[0].item()) > 1e-4


class _Counting:
    """Counts encoder runs and teacher decoder passes of the student and the teacher."""

    def __init__(self, student, teacher, monkeypatch):
        self.calls = Counter()
        for label, lm in (("student", student), ("teacher", teacher)):
            lm.model.get_encoder().register_forward_hook(self._hook(f"{label}_encoder"))
        real_forward = type(teacher).forward

        def forward(lm, *args, **kwargs):
            self.calls[f"{'teacher' if lm is teacher else 'student'}_forward"] += 1
            return real_forward(lm, *args, **kwargs)

        monkeypatch.setattr(type(teacher), "forward", forward)

    def _hook(self, key):
        def hook(module, args, output):
            self.calls[key] += 1
        return hook


@pytest.fixture
def fresh_models(models):
    """Copies of the shared models, so that the counting hooks do not outlive a test."""
    import copy

    student, teacher, layer_map, batch = models
    return (Seq2SeqLM(copy.deepcopy(student.model), student.tokenizer),
            Seq2SeqLM(copy.deepcopy(teacher.model), teacher.tokenizer), layer_map, batch)


@pytest.mark.parametrize("name, fast_calls, reference_calls", [
    # JS/TVD: student samples + teacher prefixes. Reference: student encoder in sampling and in
    # each term's forward, teacher encoder per term, separate forwards per term.
    ("tvd", dict(student_encoder=1, teacher_encoder=1, student_forward=1, teacher_forward=1),
            dict(student_encoder=3, teacher_encoder=2, student_forward=2, teacher_forward=2)),
    # KL: the teacher's sampling logits are reused; the reference scores its samples again.
    ("kl", dict(student_encoder=1, teacher_encoder=1, student_forward=1, teacher_forward=0),
           dict(student_encoder=1, teacher_encoder=2, student_forward=1, teacher_forward=1)),
])
def test_fast_mode_does_each_piece_of_work_once(fresh_models, monkeypatch, name, fast_calls, reference_calls):
    student, teacher, layer_map, batch = fresh_models
    counter = _Counting(student, teacher, monkeypatch)
    method = make_method(name)
    for loss_fn, expected in ((fast_step.method_loss, fast_calls), (reference.reference_loss, reference_calls)):
        counter.calls.clear()
        torch.manual_seed(0)
        loss_fn(method, student, teacher, batch, SINGLE_BEAM, layer_map)
        assert {k: counter.calls[k] for k in expected} == expected, loss_fn.__name__


def test_kl_falls_back_to_a_teacher_pass_with_beams(fresh_models, monkeypatch):
    """With several beams the sampling logits are not aligned with the samples: score them again."""
    student, teacher, layer_map, batch = fresh_models
    counter = _Counting(student, teacher, monkeypatch)
    torch.manual_seed(0)
    fast_step.method_loss(make_method("kl"), student, teacher, batch, TWO_BEAMS, layer_map)
    assert counter.calls["teacher_forward"] == 1


@pytest.mark.parametrize("sampling", [SINGLE_BEAM, DecodeConfig(num_beams=1, do_sample=False, max_new_tokens=7)],
                         ids=["sample", "greedy"])
def test_sampling_logits_equal_a_teacher_forced_pass(models, sampling):
    _, teacher, _, batch = models
    enc = teacher.encode(batch.source_ids, batch.source_mask)
    torch.manual_seed(5)
    prefix = teacher.generate(enc, sampling, return_logits=True)
    assert prefix.logits is not None and prefix.logits.shape[:2] == prefix.tokens.shape
    with torch.no_grad():
        forced = teacher.forward(enc, prefix).logits
    mask = prefix.mask.bool()
    assert mask.sum() > len(batch)
    assert torch.allclose(prefix.logits[mask], forced[mask], atol=1e-5)
    # the tokens are the ones generate() returns without logits (same seed, same samples)
    torch.manual_seed(5)
    assert torch.equal(teacher.generate(enc, sampling).tokens, prefix.tokens)


def test_beam_search_returns_no_logits(models):
    _, teacher, _, batch = models
    enc = teacher.encode(batch.source_ids, batch.source_mask)
    assert teacher.generate(enc, TWO_BEAMS, return_logits=True).logits is None


class _OnlineSeqKD(Method):
    """NLL of fresh teacher samples: its loss saves the sampled token ids for backward."""

    prefixes = {"teacher_sample": 1.0}
    uses_teacher = False

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return div.token_nll(student_logits, tokens)


class _RawProduct(Method):
    """A loss that multiplies the teacher's logits into the graph directly (saves them for backward)."""

    prefixes = {"teacher_sample": 0.5, "ground_truth": 0.5}

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return (student_logits * teacher_logits).square().mean(-1)


@pytest.mark.parametrize("method", [_OnlineSeqKD(), _RawProduct()], ids=["online-seqkd", "raw-product"])
def test_teacher_work_under_inference_mode_does_not_leak_into_autograd(models, method):
    """Teacher tensors made under inference mode are safe in any loss, and both modes agree on it."""
    fast = loss_and_grads(fast_step.method_loss, method, models, SINGLE_BEAM)
    ref = loss_and_grads(reference.reference_loss, method, models, SINGLE_BEAM)
    assert_same(fast, ref)


def test_autocast_is_a_no_op_on_cpu(models):
    method = make_method("tvd")
    plain = loss_and_grads(fast_step.method_loss, method, models, SINGLE_BEAM)
    cast = loss_and_grads(lambda *a: fast_step.method_loss(*a, autocast_dtype=torch.bfloat16), method, models,
                          SINGLE_BEAM)
    assert plain[0].item() == cast[0].item()


def test_step_loss_names_the_modes():
    from harness.errors import HarnessError

    assert step_loss("fast") is fast_step.method_loss
    assert step_loss("reference") is reference.reference_loss
    assert step_loss("bare") is bare.bare_loss
    with pytest.raises(HarnessError, match="known: fast, reference"):
        step_loss("slow")

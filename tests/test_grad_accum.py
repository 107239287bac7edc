"""Gradient accumulation: one big batch and the same rows in micro-batches give the same loss and
gradients, for every registered method and variant (the loss is normalised over the whole accumulated batch)."""

from __future__ import annotations

import pytest
import torch

from harness.data import make_batch
from harness.step import method_loss
from harness.step.accumulate import accumulated_step
from harness.testing import (BATCH_TEXTS, fixed_collect, gradients, make_method, method_cases, one_batch_step,
                             tiny_batch, tiny_models)


@pytest.fixture(scope="module")
def setup():
    student, teacher, layer_map, _ = tiny_models(texts=BATCH_TEXTS)
    split, big = tiny_batch(student.tokenizer, BATCH_TEXTS)
    pad = student.pad_id
    micro = [make_batch(split, list(range(i, i + 2)), pad) for i in range(0, len(BATCH_TEXTS), 2)]
    return student, teacher, layer_map, big, micro


@pytest.mark.parametrize("case", method_cases())
def test_one_big_batch_equals_four_micro_batches(setup, case):
    student, teacher, layer_map, big, micro = setup
    method = make_method(*method_cases()[case])
    from harness.config import DecodeConfig

    sampling = DecodeConfig(num_beams=1, do_sample=True, top_k=5, max_new_tokens=6)
    loss, terms, expected = one_batch_step(method, student, teacher, big, sampling, layer_map)
    accumulated, acc_terms = accumulated_step(method, student, teacher, micro, sampling, layer_map,
                                              collect=fixed_collect)
    got = gradients(student.model)
    student.model.zero_grad(set_to_none=True)
    assert accumulated.item() == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)
    assert set(acc_terms) == set(terms)
    for k in terms:
        assert acc_terms[k].item() == pytest.approx(terms[k].item(), rel=1e-5, abs=1e-6), k
    assert expected.keys() == got.keys() and expected
    for n in expected:
        assert torch.allclose(expected[n], got[n], rtol=1e-4, atol=1e-5), n   # float32 sums in another order


def test_the_test_can_fail_per_micro_batch_means_differ(setup):
    """Averaging each micro-batch's own mean (what a plain accumulation loop does) is not the big batch's loss."""
    student, teacher, layer_map, big, micro = setup
    from harness.config import DecodeConfig

    method, sampling = make_method("mle"), DecodeConfig()
    with torch.no_grad():
        whole = method_loss(method, student, teacher, big, sampling, layer_map)[0].item()
        naive = sum(method_loss(method, student, teacher, b, sampling, layer_map)[0].item() for b in micro) / len(micro)
    assert abs(whole - naive) > 1e-4


# --------------------------------------------------------------------------- the training loop
def _train(setup, **schedule):
    import copy

    from harness.config import TrainConfig
    from harness.train import train

    student, teacher, layer_map, _, _ = setup
    split, _ = tiny_batch(student.tokenizer, BATCH_TEXTS)
    lm = copy.copy(student)
    lm.model = copy.deepcopy(student.model)
    cfg = TrainConfig(**{"epochs": 1, "lr": 1e-2, "evals_per_epoch": 0, "max_steps": 1, **schedule})
    result = train(lm, make_method("mle"), split, cfg, seed=3)
    return lm.model, result


def test_the_loop_accumulates_two_micro_batches_into_one_step(setup):
    """batch 2 × 2 micro-batches = batch 4: one optimizer step from the same rows gives the same weights."""
    big, _ = _train(setup, batch_size=4)
    small, result = _train(setup, batch_size=2, grad_accum_steps=2)
    assert result.steps == 1
    # Adam's first step moves each weight by about ±lr (1e-2); float error in tiny gradients moves it 1e-6
    for (name, a), (_, b) in zip(big.named_parameters(), small.named_parameters()):
        assert torch.allclose(a, b, atol=1e-4), name
    one, _ = _train(setup, batch_size=2)   # one micro-batch alone is another step
    assert any(not torch.allclose(a, b, atol=1e-4) for a, b in zip(one.parameters(), small.parameters()))


def test_frozen_embeddings_do_not_move_and_are_trainable_again_afterwards(setup):
    from harness.lm import embedding_parameters

    student = setup[0]
    before = {n: p.detach().clone() for n, p in student.model.named_parameters()}
    model, _ = _train(setup, batch_size=4, freeze_embeddings=True)
    frozen = embedding_parameters(model)
    assert "shared.weight" in frozen
    for name, p in model.named_parameters():
        moved = not torch.equal(p, before[name])
        assert moved is (name not in frozen), name
        assert p.requires_grad


def test_warmup_in_steps_reaches_the_scheduler(setup, monkeypatch):
    import transformers

    seen = {}
    real = transformers.get_linear_schedule_with_warmup

    def spy(optimizer, warmup, total):
        seen.update(warmup=warmup, total=total)
        return real(optimizer, warmup, total)

    monkeypatch.setattr(transformers, "get_linear_schedule_with_warmup", spy)
    _train(setup, batch_size=4, warmup_steps=7)
    assert seen == {"warmup": 7, "total": 1}
    _train(setup, batch_size=4, warmup_ratio=0.5, max_steps=None, epochs=4)
    assert seen == {"warmup": 4, "total": 8}


def test_one_row_per_source_keeps_the_first_example_and_its_offline_output():
    from harness.data import TokenizedSplit
    from harness.task import Example

    examples = [Example("0", "s1", "a", ("a", "b")), Example("1", "s1", "b", ("a", "b")), Example("2", "s2", "c", ("c",))]
    split = TokenizedSplit(examples, [[1], [1], [2]], [[5], [6], [7]], [[9], [9], [8]])
    one = split.one_per_source()
    assert [e.id for e in one.examples] == ["0", "2"] and one.targets == [[5], [7]] and one.teacher_outputs == [[9], [8]]

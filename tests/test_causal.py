"""Decoder-only models: source and response concatenated, only response tokens scored."""

from __future__ import annotations

import pytest
import torch

from harness.step import fast as engine
from harness.lm.causal import left_align
from harness.config import DecodeConfig, ModelConfig
from harness.evaluate import sequence_nll
from harness.methods.divergences import token_nll
from harness.lm import Prefix
from harness import paper
from harness.registry import METHODS
from harness.testing import fixed_samples, padded_batch, tiny_batch, tiny_models

TEXTS = [("Sam lost a dog. Did you look?", "I looked everywhere."),
         ("Ana won a race. Great job!", "Thanks, I trained a lot for it."),
         ("Bo is sad.", "Why?"), ("It rains today. Bring a coat.", "Good idea, thank you.")]
BUILTIN = list(paper.METHODS)   # the paper's students


@pytest.fixture(scope="module")
def setup():
    cfg = ModelConfig(family="gpt2", d_model=16, decoder_layers=3, heads=2, ffn_dim=32, max_positions=64)
    student, teacher, layer_map, batch = tiny_models(texts=TEXTS, vocab_size=90, config=cfg, student_layers=(0, 2))
    split, _ = tiny_batch(teacher.tokenizer, TEXTS)
    return student, teacher, layer_map, batch, split


def test_left_align_moves_padding_to_the_front():
    ids = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0], [1, 2, 3, 4]])
    mask = (ids != 0).long()
    aligned, new_mask = left_align(ids, mask, pad_id=0)
    assert aligned.tolist() == [[0, 5, 6, 7], [0, 0, 0, 8], [1, 2, 3, 4]]
    assert new_mask.tolist() == [[0, 1, 1, 1], [0, 0, 0, 1], [1, 1, 1, 1]]


def test_student_copies_teacher_blocks(setup):
    student, teacher, layer_map, *_ = setup
    assert "encoder" not in layer_map and layer_map["decoder"]["copied"] == [0, 2]
    assert len(student.model.transformer.h) == 2


def test_logits_equal_one_unpadded_sequence_per_example(setup):
    """Row b's logits at response step t equal those of [source_b, y_<t] run alone, with no padding:
    the first response token is predicted from the source's last token (its EOS)."""
    _, teacher, _, batch, split = setup
    with torch.no_grad():
        logits = teacher.forward(teacher.encode(batch.source_ids, batch.source_mask), batch.target).logits
        for b in range(len(batch)):
            src, tgt = split.sources[b], split.targets[b]
            alone = teacher.model(input_ids=torch.tensor([src + tgt])).logits[0]
            expected = alone[len(src) - 1: len(src) - 1 + len(tgt)]
            torch.testing.assert_close(logits[b, : len(tgt)], expected, atol=1e-5, rtol=1e-5)


def test_generate_continues_the_source_consistently_with_forward(setup):
    """Greedy tokens are the argmax of the teacher-forced logits on those tokens (same positions)."""
    _, teacher, _, batch, _ = setup
    enc = teacher.encode(batch.source_ids, batch.source_mask)
    out = teacher.generate(enc, DecodeConfig(num_beams=1, do_sample=False, max_new_tokens=8))
    with torch.no_grad():
        logits = teacher.forward(enc, out).logits
    greedy = logits.argmax(-1)
    assert torch.equal(greedy[out.mask.bool()], out.tokens[out.mask.bool()])


def test_nll_scores_first_response_token_and_nothing_after_eos(setup):
    _, teacher, _, batch, split = setup
    eos = teacher.eos_id
    outputs = [[7, 9, eos], [11, eos]]
    nll = sequence_nll(teacher, split, outputs, "cpu")
    with torch.no_grad():
        for b, out in enumerate(outputs):
            src = split.sources[b]
            alone = teacher.model(input_ids=torch.tensor([src + out])).logits[0, len(src) - 1: len(src) - 1 + len(out)]
            expected = float(token_nll(alone.unsqueeze(0), torch.tensor([out])).sum())
            assert nll[b][1] == len(out)  # EOS included, first token included
            assert nll[b][0] == pytest.approx(expected, rel=1e-5)


def test_tokens_after_eos_are_never_scored(setup):
    """Garbage after a sample's EOS (mask 0, as sequences_to_prefix makes it) leaves the loss unchanged."""
    from harness.lm import sequences_to_prefix

    student, teacher, layer_map, batch, _ = setup
    eos = teacher.eos_id
    cut = sequences_to_prefix(torch.tensor([[7, 9, eos, 3, 4]]), eos, teacher.pad_id)
    assert cut.mask.tolist() == [[1, 1, 1, 0, 0]]
    clean = batch.target
    noisy_tokens = torch.where(clean.mask.bool(), clean.tokens, torch.randint_like(clean.tokens, 4, 60))
    noisy = type(batch)(batch.index, batch.source_ids, batch.source_mask, Prefix(noisy_tokens, clean.mask))
    mle = METHODS.get("mle")()
    loss, _ = engine.method_loss(mle, student, None, batch, DecodeConfig(), layer_map)
    loss_noisy, _ = engine.method_loss(mle, student, None, noisy, DecodeConfig(), layer_map)
    assert not torch.equal(noisy_tokens, clean.tokens)
    torch.testing.assert_close(loss_noisy, loss)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_method_trains_a_decoder_only_student(setup, name):
    student, teacher, layer_map, batch, _ = setup
    method = METHODS.get(name)({"beta": 0.85} if name == "js" else None)
    student.model.zero_grad(set_to_none=True)
    teacher.model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    sampling = DecodeConfig(num_beams=1, do_sample=True, top_p=0.9, max_new_tokens=6)
    loss, terms = engine.method_loss(method, student, teacher, batch, sampling, layer_map)
    assert torch.isfinite(loss) and loss.item() > 1e-4
    loss.backward()
    assert all(p.grad is None for p in teacher.model.parameters())
    assert sum(float(p.grad.abs().sum()) for p in student.model.parameters() if p.grad is not None) > 0


@pytest.mark.parametrize("name", BUILTIN)
def test_padding_does_not_change_a_decoder_only_loss(setup, name):
    student, teacher, layer_map, batch, _ = setup
    method = METHODS.get(name)({"beta": 0.85} if name == "js" else None)
    collect = fixed_samples(batch, student.pad_id)
    loss, _ = engine.method_loss(method, student, teacher, batch, DecodeConfig(), layer_map, collect=collect)
    loss_padded, _ = engine.method_loss(method, student, teacher, padded_batch(batch, student.pad_id), DecodeConfig(),
                                        layer_map, collect=collect)
    torch.testing.assert_close(loss_padded, loss, atol=1e-5, rtol=1e-5)

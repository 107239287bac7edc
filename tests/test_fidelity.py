"""Token-level teacher–student TVD and the acceptance rate α = 1 − TVD (the evaluation stage's ``tvd_token``,
``acceptance``), against a brute-force computation on tiny models: one prefix at a time, one model at a time."""

from __future__ import annotations

import pytest
import torch

from harness.config import DecodeConfig
from harness.evaluate import decode, per_token, sequence_nll, teacher_scores
from harness.lm import Prefix
from harness.store.runs import higher_is_better
from harness.testing import tiny_batch, tiny_models


@pytest.fixture(scope="module")
def setup():
    student, teacher, _, _ = tiny_models(seed=3)
    split, _ = tiny_batch(student.tokenizer)
    greedy = decode(student, split, DecodeConfig(num_beams=1, do_sample=False, max_new_tokens=6), "cpu")
    # the student's own outputs, cut to different lengths and ended: padding between them in one batch
    outputs = [tokens[:keep] + [student.eos_id] for tokens, keep in zip(greedy, (1, 4, 2, 5))]
    return student, teacher, split, outputs


def next_token_distribution(lm, source: list[int], prefix: list[int]) -> torch.Tensor:
    """p(· | prefix, source) of one model: a pass over the prefix followed by one placeholder token."""
    tokens = torch.tensor([prefix + [lm.eos_id]])
    with torch.no_grad():
        enc = lm.encode(torch.tensor([source]), torch.ones(1, len(source), dtype=torch.long))
        logits = lm.forward(enc, Prefix(tokens, torch.ones_like(tokens))).logits
    return logits[0, len(prefix)].float().softmax(-1)


def brute_force_tvd(teacher, student, source, output) -> float:
    total = 0.0
    for t in range(len(output)):
        p = next_token_distribution(teacher, source, output[:t])
        q = next_token_distribution(student, source, output[:t])
        total += 0.5 * sum(abs(float(p[v]) - float(q[v])) for v in range(len(p)))
    return total


def token_tvd(teacher, student, split, outputs, device, batch_size=64):
    return teacher_scores(teacher, student, split, outputs, device, batch_size)[1]


def test_the_teacher_pass_gives_the_teachers_nll_of_the_outputs_exactly(setup):
    student, teacher, split, outputs = setup
    nll, tvd = teacher_scores(teacher, student, split, outputs, "cpu", batch_size=3)
    assert nll == sequence_nll(teacher, split, outputs, "cpu", batch_size=3)
    assert teacher_scores(teacher, None, split, outputs, "cpu", batch_size=3) == (nll, None)
    assert nll != sequence_nll(student, split, outputs, "cpu", batch_size=3)


def test_token_tvd_equals_a_brute_force_sum_over_prefixes_and_vocabulary(setup):
    student, teacher, split, outputs = setup
    pairs = token_tvd(teacher, student, split, outputs, "cpu", batch_size=3)
    for (total, count), source, output in zip(pairs, split.sources, outputs):
        assert count == len(output)
        assert total == pytest.approx(brute_force_tvd(teacher, student, source, output), rel=1e-4, abs=1e-6)
    tvd = per_token(pairs)
    assert 0.0 < tvd < 1.0                                          # the tiny student was moved away from the teacher


def test_a_model_against_itself_has_no_distance(setup):
    student, _, split, outputs = setup
    assert per_token(token_tvd(student, student, split, outputs, "cpu")) == pytest.approx(0.0, abs=1e-7)


def test_tvd_is_lower_is_better_and_acceptance_higher():
    assert higher_is_better("tvd_token", []) is False
    assert higher_is_better("acceptance", []) is True

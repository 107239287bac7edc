"""Pre-distillation's two variants: the harness's own (a layer table, layer-normalised mean, the teacher's
own encoder) and the reference code's (copied-layer pairing from the embedding output on, summed layer
terms, the teacher's decoder on the student's encoder output)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from harness.config import DecodeConfig
from harness.errors import HarnessError
from harness.step import fast as fast_step
from harness.testing import PREDISTILL_AS_REFERENCE, make_method, tiny_models

#: A 12-layer teacher's encoder copied into 3 student layers, its decoder into 1 (the DART student).
LAYER_MAP = {"encoder": {"copied": [0, 6, 11], "supervised": [3, 7, 11]},
             "decoder": {"copied": [0], "supervised": [11]}}
HIDDEN = 4
#: The harness's own variant (the defaults, written out).
LAYER_TABLE = {"hidden_pairing": "layer_table", "hidden_layers": "mean", "normalize_hidden": True}


def hidden_states(seed: int, n: int, length: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, length, HIDDEN, generator=g, dtype=torch.float64) for _ in range(n))


@pytest.fixture
def states():
    """Student states (embeddings + 3 encoder layers, embeddings + 1 decoder layer), teacher's (1 + 12 each),
    and a batch whose masks leave one position of each stack out."""
    student = {"encoder": hidden_states(0, 4, 5), "decoder": hidden_states(1, 2, 3)}
    teacher = {"encoder": hidden_states(2, 13, 5), "decoder": hidden_states(3, 13, 3)}
    batch = SimpleNamespace(source_mask=torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]),
                            target_mask=torch.tensor([[1, 1, 1], [1, 1, 0]]))
    return student, teacher, batch


def masked_mse(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(s.dtype)
    return ((s - t) ** 2 * m).sum() / (m.sum() * s.shape[-1])


def hidden_loss(method, states) -> float:
    student, teacher, batch = states
    return method.extra_loss(student, teacher, batch, LAYER_MAP).item()


def test_the_pairings_name_the_states_they_compare():
    table, reference = make_method("predistill", LAYER_TABLE), make_method("predistill", PREDISTILL_AS_REFERENCE)
    # student state i+1 (after layer i) with teacher state j+1 for j in the table
    assert table.hidden_pairs(LAYER_MAP["encoder"]) == [(1, 4), (2, 8), (3, 12)]
    assert table.hidden_pairs(LAYER_MAP["decoder"]) == [(1, 12)]
    # student state i (embedding output first) with teacher state copied[i]: the last student state is left out
    assert reference.hidden_pairs(LAYER_MAP["encoder"]) == [(0, 0), (1, 6), (2, 11)]
    assert reference.hidden_pairs(LAYER_MAP["decoder"]) == [(0, 0)]


def test_the_reference_loss_is_the_sum_over_those_pairs_by_hand(states):
    student, teacher, batch = states
    method = make_method("predistill", {**PREDISTILL_AS_REFERENCE, "alpha_hid": 1.0})
    expected = sum(masked_mse(student["encoder"][i], teacher["encoder"][j], batch.source_mask)
                   for i, j in [(0, 0), (1, 6), (2, 11)]) \
        + masked_mse(student["decoder"][0], teacher["decoder"][0], batch.target_mask)
    assert hidden_loss(method, states) == pytest.approx(expected.item(), rel=1e-12)


def test_the_students_last_state_counts_only_in_the_layer_table(states):
    student, teacher, batch = states
    moved = {"encoder": student["encoder"][:-1] + (student["encoder"][-1] + 1.0,), "decoder": student["decoder"]}
    for params, changes in ((LAYER_TABLE, True), (PREDISTILL_AS_REFERENCE, False)):
        method = make_method("predistill", params)
        before, after = hidden_loss(method, states), hidden_loss(method, (moved, teacher, batch))
        assert (before != after) is changes, params


def test_sum_is_the_number_of_terms_times_mean(states):
    common = {"hidden_pairing": "reference", "normalize_hidden": False}
    summed = hidden_loss(make_method("predistill", {**common, "hidden_layers": "sum"}), states)
    mean = hidden_loss(make_method("predistill", {**common, "hidden_layers": "mean"}), states)
    assert summed == pytest.approx(4 * mean, rel=1e-12)   # 3 encoder pairs + 1 decoder pair


def test_normalisation_makes_the_loss_scale_free(states):
    student, teacher, batch = states
    scaled = {stack: tuple(10 * h for h in teacher[stack]) for stack in teacher}
    for normalize, scale_free in ((True, True), (False, False)):
        method = make_method("predistill", {**LAYER_TABLE, "normalize_hidden": normalize})
        same = hidden_loss(method, states) == pytest.approx(hidden_loss(method, (student, scaled, batch)), rel=1e-4)
        assert same is scale_free, normalize


def test_masked_positions_do_not_count(states):
    student, teacher, batch = states
    moved = {"encoder": tuple(h.clone() for h in student["encoder"]), "decoder": student["decoder"]}
    for h in moved["encoder"]:
        h[1, 4] += 5.0                 # the position source_mask leaves out
    method = make_method("predistill", PREDISTILL_AS_REFERENCE)
    assert hidden_loss(method, states) == hidden_loss(method, (moved, teacher, batch))


# ---------------------------------------------------------------- the teacher reads the student's encoder

@pytest.fixture(scope="module")
def models():
    return tiny_models()


def encoder_grads(method, models) -> dict[str, torch.Tensor]:
    """The student's encoder gradients of ``method``'s step loss; the teacher's parameters get none."""
    student, teacher, layer_map, batch = models
    student.model.zero_grad(set_to_none=True)
    loss, _ = fast_step.method_loss(method, student, teacher, batch, DecodeConfig(), layer_map)
    loss.backward()
    assert all(p.grad is None for p in teacher.model.parameters())
    assert all(p.requires_grad for p in teacher.model.parameters())   # unfrozen again after the step
    return {n: p.grad.clone() for n, p in student.model.get_encoder().named_parameters() if p.grad is not None}


def test_the_kl_term_reaches_the_students_encoder_through_the_teacher(models):
    """KL only (no CE, no hidden term): reading the student's encoder output adds a gradient path into the
    student's encoder, so its encoder gradients differ from the teacher-reads-its-own variant's."""
    kl_only = {"alpha_ce": 1.0, "alpha_mlm": 0.0, "alpha_hid": 0.0}
    own = encoder_grads(make_method("predistill", {**kl_only, "teacher_encoder": "own"}), models)
    through = encoder_grads(make_method("predistill", {**kl_only, "teacher_encoder": "student"}), models)
    assert own.keys() == through.keys() and own
    assert any(not torch.allclose(own[n], through[n], atol=1e-6) for n in own)


def test_the_teacher_pass_carries_gradient_only_when_it_reads_the_student(models):
    student, teacher, _, batch = models
    student_enc = student.encode(batch.source_ids, batch.source_mask)
    teacher_enc = teacher.encode(batch.source_ids, batch.source_mask)
    for params, carries in (({}, False), (PREDISTILL_AS_REFERENCE, True)):
        out = fast_step.teacher_pass(make_method("predistill", params), teacher, student_enc, teacher_enc,
                                     batch.target)
        assert out.logits.requires_grad is carries, params
    student.model.zero_grad(set_to_none=True)
    out.logits.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.model.get_encoder().parameters())
    assert all(p.grad is None for p in teacher.model.parameters())


def test_decoder_only_tasks_refuse_the_student_encoder_in_one_line():
    from harness.config import resolve_config
    from harness.pipeline.graph import plan_for

    cfg = resolve_config("commonsense_dialogue", "predistill", "ci", sets=[("method.teacher_encoder", "student")])
    with pytest.raises(HarnessError, match="decoder-only: it has no encoder") as err:
        plan_for(cfg)
    assert "\n" not in str(err.value)
    plan_for(resolve_config("dart", "predistill", "ci", sets=[("method.teacher_encoder", "student")]))

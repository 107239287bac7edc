"""The shared step engine: gradients, masking, batching of prefix sets."""

from __future__ import annotations

import pytest
import torch

from harness.step import fast as engine
from harness.config import DecodeConfig, ModelConfig
from harness.lm import build_model, make_student, sequences_to_prefix, train_tokenizer
from harness import paper
from harness.registry import METHODS
from harness.testing import fixed_samples, padded_batch, tiny_models

TEXTS = [("a : b : c", "A is b of c."), ("x : y : z | x : w : v", "X is y of z and w of v."),
         ("p : q : r", "P has q r."), ("m : n : o", "M n o, they say.")]
ALL_METHODS = list(paper.METHODS)   # the paper's students


@pytest.fixture(scope="module")
def models():
    return tiny_models()


def method(name):
    return METHODS.get(name)({"beta": 0.85} if name == "js" else None)


SAMPLING = DecodeConfig(num_beams=2, do_sample=True, top_k=5, max_new_tokens=6)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_gradients_flow_only_into_the_student(models, name):
    student, teacher, layer_map, batch = models
    student.model.zero_grad(set_to_none=True)
    teacher.model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    loss, terms = engine.method_loss(method(name), student, teacher, batch, SAMPLING, layer_map)
    assert torch.isfinite(loss) and loss.item() > 1e-4
    loss.backward()
    assert all(p.grad is None for p in teacher.model.parameters())
    grads = [p.grad for p in student.model.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert set(terms) >= set(method(name).prefix_weights())


@pytest.mark.parametrize("name", ALL_METHODS)
def test_padding_does_not_change_the_loss(models, name):
    """Extra pad columns on sources and on every prefix set leave the loss unchanged."""
    student, teacher, layer_map, batch = models
    collect = fixed_samples(batch, student.pad_id)   # deterministic stand-ins for the sampled prefixes
    m = method(name)
    base, _ = engine.method_loss(m, student, teacher, batch, SAMPLING, layer_map, collect=collect)
    again, _ = engine.method_loss(m, student, teacher, padded_batch(batch, student.pad_id), SAMPLING, layer_map,
                                  collect=collect)
    assert float(again.detach()) == pytest.approx(float(base.detach()), rel=1e-5, abs=1e-6)


def test_one_batched_student_pass_equals_separate_passes(models):
    """Scoring two prefix sets in one tiled pass gives the logits of two separate passes."""
    student, _, _, batch = models
    enc = student.encode(batch.source_ids, batch.source_mask)
    stacked = engine.stack_prefixes([batch.target, batch.teacher_output], student.pad_id)
    together = student.forward(enc, stacked, repeat=2).logits
    n = len(batch)
    for i, prefix in enumerate([batch.target, batch.teacher_output]):
        alone = student.forward(enc, prefix).logits
        width = prefix.tokens.shape[1]
        mask = prefix.mask.bool()
        assert torch.allclose(together[i * n:(i + 1) * n, :width][mask], alone[mask], atol=1e-5)


def test_per_token_mean_weights_sources(models):
    """loss = Σ_source weight · (masked mean over that source's tokens)."""
    student, teacher, layer_map, batch = models
    m = method("tvd")
    loss, terms = engine.method_loss(m, student, teacher, batch, SAMPLING, layer_map,
                                     collect=lambda source, b, *a: b.target if source == "student_sample"
                                     else b.teacher_output)
    assert loss.item() == pytest.approx(0.5 * terms["teacher_offline"].item() + 0.5 * terms["student_sample"].item())
    with torch.no_grad():
        logits_s = student.forward(student.encode(batch.source_ids, batch.source_mask), batch.target).logits
        logits_t = teacher.forward(teacher.encode(batch.source_ids, batch.source_mask), batch.target).logits
    per_token = m.token_loss(logits_s, logits_t, batch.target.tokens, "student_sample")
    expected = float((per_token * batch.target.mask).sum() / batch.target.mask.sum())
    assert terms["student_sample"].item() == pytest.approx(expected, rel=1e-5)


def test_sequences_to_prefix_masks_after_first_eos():
    tokens = torch.tensor([[5, 6, 2, 0, 0], [5, 2, 7, 2, 0], [5, 6, 7, 8, 9]])
    prefix = sequences_to_prefix(tokens, eos_id=2, pad_id=0)
    assert prefix.mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert prefix.tokens.tolist()[1] == [5, 2, 0, 0, 0]


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_layer_copy_starts_student_layers_from_the_teacher(family):
    from harness.lm.build import _layer_stacks

    tok = train_tokenizer([s for pair in TEXTS for s in pair], vocab_size=80)
    teacher = build_model(ModelConfig(family=family, d_model=16, encoder_layers=4, decoder_layers=2, heads=2,
                                        ffn_dim=32), tok)
    student, layer_map = make_student(teacher, 2, 1)
    assert layer_map["encoder"]["copied"] == [0, 3] and layer_map["decoder"]["copied"] == [0]
    t_stacks, s_stacks = _layer_stacks(teacher), _layer_stacks(student)
    assert len(s_stacks["encoder"]) == 2 and len(s_stacks["decoder"]) == 1
    for stack, copied in (("encoder", [0, 3]), ("decoder", [0])):
        for i, j in enumerate(copied):
            s_state, t_state = s_stacks[stack][i].state_dict(), t_stacks[stack][j].state_dict()
            assert s_state.keys() == t_state.keys()
            assert all(torch.equal(s_state[k], t_state[k]) for k in s_state), (stack, i, j)
    # everything outside the layer stacks (embeddings, final norms, head) is the teacher's
    t_params = dict(teacher.named_parameters())
    for name, param in student.named_parameters():
        if ".layers." not in name and ".block." not in name:
            assert torch.equal(param, t_params[name]), name


def test_layer_maps_match_shleifer_and_rush():
    from harness.lm import layers_to_copy, layers_to_supervise

    assert layers_to_copy(12, 3) == [0, 6, 11]
    assert layers_to_copy(12, 1) == [0]
    assert layers_to_copy(24, 4) == [0, 8, 16, 23]
    assert layers_to_supervise(12, 3) == [3, 7, 11]
    assert layers_to_copy(4, 2) == [0, 3]
    assert layers_to_supervise(4, 2) == [1, 3]
    with pytest.raises(ValueError):
        layers_to_copy(2, 3)


def test_a_token_loss_of_the_wrong_shape_is_one_error_naming_the_method():
    """The plugin contract where the step crosses it: [B, T, V] instead of [B, T] is named, not a size mismatch."""
    from harness.config import DecodeConfig
    from harness.errors import HarnessError
    from harness.methods import Method
    from harness.testing import tiny_models

    class Unreduced(Method):
        name = "unreduced"
        prefixes = {"ground_truth": 1.0}
        uses_teacher = False

        def token_loss(self, student_logits, teacher_logits, tokens, source):
            return student_logits.log_softmax(-1)          # forgot to pick or sum over the vocabulary

    student, teacher, layer_map, batch = tiny_models()
    with pytest.raises(HarnessError, match=r"method 'unreduced': token_loss for 'ground_truth' returned a "
                                           r"torch.float32 tensor of shape \[4, \d+, \d+\]; expected one loss per "
                                           r"position, a floating tensor of shape \[B, T\] = \[4, \d+\]"):
        engine.method_loss(Unreduced(), student, teacher, batch, DecodeConfig(), layer_map)

"""The baselines the paper reports beside f-DISTILL: MLE, pre-distillation, SeqKD, ENGINE."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import setting
from ..registry import register_method
from . import divergences as div
from .base import Method


@register_method("mle")
class MLE(Method):
    """No distillation: −log q(y_t) on the ground truth, from the layer-copied student."""

    prefixes = {"ground_truth": 1.0}
    init = "layer_copy"
    uses_teacher = False

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return div.token_nll(student_logits, tokens)


@register_method("predistill")
class PreDistill(Method):
    """Shleifer & Rush (2020): α_ce·T²·KL(p^T‖q^T) + α_mlm·(−log q(y_t)) on ground truth, + α_hid·hidden MSE.

    p^T, q^T are the temperature-T softmaxes. The hidden term is the MSE between each
    student layer's output and the teacher layer it replaces, on encoder and decoder
    (non-pad positions). Every KD method starts from this student.
    """

    prefixes = {"ground_truth": 1.0}
    init = "layer_copy"
    needs_hidden_states = True

    @dataclass
    class Params:
        alpha_ce: float = setting(0.8, help="weight of the temperature-T KL(p‖q)", ge=0.0)
        alpha_mlm: float = setting(0.2, help="weight of −log q(y_t)", ge=0.0)
        alpha_hid: float = setting(3.0, help="weight of the hidden-state MSE", ge=0.0)
        temperature: float = setting(2.0, help="softmax temperature T (the KL is scaled by T²)", gt=0.0)

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        t = self.params.temperature
        kl = div.forward_kl(student_logits / t, teacher_logits / t) * t * t
        return self.params.alpha_ce * kl + self.params.alpha_mlm * div.token_nll(student_logits, tokens)

    def extra_loss(self, student_out, teacher_out, batch, layer_map, totals=None):
        if self.params.alpha_hid == 0:
            return None
        terms = []
        for stack, mask in (("encoder", batch.source_mask), ("decoder", batch.target_mask)):
            if stack not in layer_map:                 # decoder-only models have no encoder stack
                continue
            s_states = student_out[stack][1:]          # outputs of the student's layers
            t_states = teacher_out[stack]
            for i, j in enumerate(layer_map[stack]["supervised"]):
                terms.append(_masked_mse(s_states[i], t_states[j + 1], mask, None if totals is None else totals[stack]))
        return self.params.alpha_hid * torch.stack(terms).mean()


def _masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, tokens: float | None = None
                ) -> torch.Tensor:
    """Mean squared error over the positions ``mask`` marks (or over ``tokens`` positions: an accumulated batch's)."""
    # Layer-normalised states, as Shleifer & Rush's ``normalize_hidden`` (scale-free across models).
    s = F.layer_norm(student, student.shape[-1:])
    t = F.layer_norm(teacher, teacher.shape[-1:])
    m = mask.unsqueeze(-1).to(s.dtype)
    count = m.sum() if tokens is None else torch.tensor(float(tokens), dtype=s.dtype, device=s.device)
    return ((s - t) ** 2 * m).sum() / (count * s.shape[-1]).clamp_min(1)


@register_method("seqkd")
class SeqKD(Method):
    """Kim & Rush (2016): −log q(y_t) on the teacher's offline beam outputs (KL towards the teacher's mode)."""

    prefixes = {"teacher_offline": 1.0}
    uses_teacher = False

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return div.token_nll(student_logits, tokens)


@register_method("engine")
class Engine(Method):
    """ENGINE (Tu et al., 2020): −Σ_v q_t(v) log p_t(v) on the student's greedy decode."""

    prefixes = {"student_greedy": 1.0}

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return div.teacher_cross_entropy(student_logits, teacher_logits)

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

    p^T, q^T are the temperature-T softmaxes. The hidden term is a masked MSE between
    student and teacher hidden states on encoder and decoder (non-pad positions), in one
    of two variants; every KD method starts from this student.

    * The harness's own (the defaults): each student layer's output against the output of
      the teacher layer that ends the block it replaces (``layer_map[stack]["supervised"]``),
      every state layer-normalised per token, the layer terms averaged; the teacher reads
      its own encoder output.
    * The reference code's (``hidden_pairing="reference"``, ``hidden_layers="sum"``,
      ``teacher_encoder="student"``; ``dart/distillation.py:172-234``): student
      ``hidden_states[i]`` (index 0 = the embedding output) against teacher
      ``hidden_states[copied[i]]`` for i < the number of copied layers, so the student's last
      state is never supervised; the layer terms summed; and the teacher's decoder reads the
      *student's* encoder output with gradient (the teacher's parameters frozen), so the KL
      term also trains the student's encoder through the teacher's decoder. The reference's
      ``--normalize_hidden`` layer-normalises each layer's whole (batch, time, hidden) tensor,
      pads included; ``normalize_hidden`` here normalises each token's state on its own.

    T defaults to 1 (the reference's default): at T = 2 the pre-distilled student fell below MLE
    on the DART twin over three seeds, at T = 1 it is above, with either pairing
    (``docs/paper-recipe.md``).
    """

    prefixes = {"ground_truth": 1.0}
    init = "layer_copy"
    needs_hidden_states = True

    @dataclass
    class Params:
        alpha_ce: float = setting(0.8, help="weight of the temperature-T KL(p‖q)", ge=0.0)
        alpha_mlm: float = setting(0.2, help="weight of −log q(y_t)", ge=0.0)
        alpha_hid: float = setting(3.0, help="weight of the hidden-state MSE", ge=0.0)
        temperature: float = setting(1.0, help="softmax temperature T (the KL is scaled by T²)", gt=0.0)
        hidden_pairing: str = setting("layer_table", help="which states are compared: layer_table (student layer "
                                      "i's output with the teacher layer ending its block) or reference (student "
                                      "state i, embeddings included, with teacher state copied[i])",
                                      choices=("layer_table", "reference"))
        hidden_layers: str = setting("mean", help="how the per-layer MSE terms combine", choices=("mean", "sum"))
        normalize_hidden: bool = setting(True, help="layer-normalise each token's hidden state before the MSE")
        teacher_encoder: str = setting("own", help="what the teacher's decoder reads: its own encoder output, or "
                                       "the student's (with gradient into the student's encoder)",
                                       choices=("own", "student"))

    @property
    def teacher_reads_student_encoder(self) -> bool:
        return self.params.teacher_encoder == "student"

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        t = self.params.temperature
        kl = div.forward_kl(student_logits / t, teacher_logits / t) * t * t
        return self.params.alpha_ce * kl + self.params.alpha_mlm * div.token_nll(student_logits, tokens)

    def hidden_pairs(self, layers: dict) -> list[tuple[int, int]]:
        """(student index, teacher index) into a stack's ``hidden_states`` (index 0: the embedding output)
        for the stack's entry of the layer map (``copied`` and ``supervised`` teacher layer ids)."""
        if self.params.hidden_pairing == "reference":
            return list(enumerate(layers["copied"]))
        return [(i + 1, j + 1) for i, j in enumerate(layers["supervised"])]

    def extra_loss(self, student_out, teacher_out, batch, layer_map, totals=None):
        if self.params.alpha_hid == 0:
            return None
        terms = []
        for stack, mask in (("encoder", batch.source_mask), ("decoder", batch.target_mask)):
            if stack not in layer_map:                 # decoder-only models have no encoder stack
                continue
            tokens = None if totals is None else totals[stack]
            for i, j in self.hidden_pairs(layer_map[stack]):
                terms.append(_masked_mse(student_out[stack][i], teacher_out[stack][j], mask, tokens,
                                         self.params.normalize_hidden))
        stacked = torch.stack(terms)
        return self.params.alpha_hid * (stacked.sum() if self.params.hidden_layers == "sum" else stacked.mean())


def _masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, tokens: float | None = None,
                normalize: bool = True) -> torch.Tensor:
    """Mean squared error over the positions ``mask`` marks (or over ``tokens`` positions: an accumulated batch's)
    and the hidden dimension; ``normalize`` layer-normalises each token's state first (scale-free across models)."""
    s, t = student, teacher
    if normalize:
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

    @dataclass
    class Params:
        max_source_tokens: int | None = setting(None, help="cap on the sources ENGINE trains and validates on (EOS "
                                                "kept), where tighter than tokenizer.max_source_tokens; None: the "
                                                "tokenizer's (the WMT reference: 128)", ge=2)

    def source_cap(self) -> int | None:
        return self.params.max_source_tokens

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return div.teacher_cross_entropy(student_logits, teacher_logits)

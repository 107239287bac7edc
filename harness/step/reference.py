"""The ``reference`` execution mode: a training step with the structure of the paper's code.

The authors' code (a fork of the Shleifer & Rush seq2seq distillation example) computes
each loss term on its own, and so repeats work that :func:`harness.step.fast.method_loss`
does once per batch:

* the student encoder runs once inside ``generate`` for sampling and once more for
  every loss term; the teacher encoder once per loss term;
* KL samples from the teacher and then runs the teacher again over those samples to
  score them;
* the two halves of JS and TVD (student samples, teacher prefixes) each make their own
  student and teacher forward passes;
* sampling and teacher passes run under ``torch.no_grad`` (not ``inference_mode``).

Autocast, when asked for, is applied as in the fast mode, so that a comparison measures
structure only.

:func:`reference_loss` keeps that structure while using the same method declarations
(``prefix_weights``, ``token_loss``, ``extra_loss``), so the two modes can be compared on
the same models, data and seeds. Random numbers are drawn only by the sampling calls,
which run in the same order as in the engine (one per online source, in declaration
order), so both modes see the same samples; their losses and gradients then agree up to
float error, which ``tests/test_reference_mode.py`` checks for every registered method.
(With dropout on, the extra forward passes here would draw extra dropout masks and the
samples would differ.)
"""

from __future__ import annotations

import torch

from ..config import DecodeConfig
from ..data import Batch
from ..lm import Prefix, Seq2SeqLM
from ..methods.base import Method
from .loss import autocast, combine, frozen
from .prefixes import ONLINE_SOURCES, batch_prefix, decode_config


def reference_prefix(source: str, batch: Batch, student: Seq2SeqLM, teacher: Seq2SeqLM | None,
                     sampling: DecodeConfig) -> Prefix:
    """The prefix set of ``source``; each sampling call is ``model.generate(input_ids=…)`` as the paper's
    code calls it: the encoder runs inside, afresh, under ``torch.no_grad``."""
    if source not in ONLINE_SOURCES:
        return batch_prefix(source, batch)
    lm = teacher if source == "teacher_sample" else student
    with torch.no_grad():
        return lm.generate(lm.encode(batch.source_ids, batch.source_mask), decode_config(source, sampling))


def _full_pass(lm: Seq2SeqLM, batch: Batch, prefix: Prefix, hidden: bool):
    """One ``model(input_ids=…, decoder_input_ids=…)`` call: encoder and decoder, nothing reused."""
    enc = lm.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)
    return enc, lm.forward(enc, prefix, hidden_states=hidden)


def _teacher_full_pass(method: Method, teacher: Seq2SeqLM, batch: Batch, prefix: Prefix, student_enc, hidden: bool):
    """The teacher's ``model(input_ids=…, decoder_input_ids=…)`` call under ``torch.no_grad``; for a method whose
    teacher reads the student's encoder output, its encoder under ``no_grad`` (for its hidden states) and its
    decoder on the student's encoder output with gradient (``encoder_outputs=(student's,)``, parameters frozen)."""
    if not method.teacher_reads_student_encoder:
        with torch.no_grad():
            return _full_pass(teacher, batch, prefix, hidden)
    with torch.no_grad():
        enc = teacher.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)
    with frozen(teacher.model):
        return enc, teacher.forward(student_enc, prefix, hidden_states=hidden)


def _stack_states(per_term: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """Decoder hidden states of several terms as one batch (zero-padded to the widest term)."""
    if len(per_term) == 1:
        return per_term[0]
    width = max(states[0].shape[1] for states in per_term)
    pad = lambda h: torch.nn.functional.pad(h, (0, 0, 0, width - h.shape[1]))  # noqa: E731
    return tuple(torch.cat([pad(states[k]) for states in per_term]) for k in range(len(per_term[0])))


def reference_loss(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, batch: Batch,
                   sampling: DecodeConfig, layer_map: dict | None = None, *,
                   autocast_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The step loss of ``method`` and its terms, computed term by term as the paper's code does.

    Same signature and result as :func:`harness.step.fast.method_loss` (less its ``collect``:
    this mode's sampling is part of the structure it reproduces). For each prefix source in
    turn: draw the prefixes (re-encoding), run the student (re-encoding, with gradient)
    and, if the loss needs it, the teacher (re-encoding, no gradient) over them, and keep
    the per-token loss; :func:`harness.step.loss.combine` then makes the weighted per-source
    means. A method with hidden-state terms gets the hidden states of these per-term passes
    (the encoder's from the first term).
    """
    hidden = method.needs_hidden_states
    token_losses: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    student_states: dict[str, list] = {"encoder": [], "decoder": []}
    teacher_states: dict[str, list] = {"encoder": [], "decoder": []}
    with autocast(batch.source_ids.device, autocast_dtype):
        for source in method.active_prefix_weights():
            prefix = reference_prefix(source, batch, student, teacher, sampling)
            s_enc, s_out = _full_pass(student, batch, prefix, hidden)
            teacher_logits = None
            if method.uses_teacher:
                t_enc, t_out = _teacher_full_pass(method, teacher, batch, prefix, s_enc, hidden)
                teacher_logits = t_out.logits
            token_losses[source] = method.token_loss(s_out.logits, teacher_logits, prefix.tokens, source)
            masks[source] = prefix.mask
            if hidden:
                student_states["encoder"].append(s_enc.outputs.hidden_states)
                student_states["decoder"].append(s_out.decoder_hidden_states)
                if method.uses_teacher:
                    teacher_states["encoder"].append(t_enc.outputs.hidden_states)
                    teacher_states["decoder"].append(t_out.decoder_hidden_states)
        extra = None
        if hidden:
            pick = lambda states: None if not states["encoder"] else {  # noqa: E731
                "encoder": states["encoder"][0], "decoder": _stack_states(states["decoder"])}
            extra = method.extra_loss(pick(student_states), pick(teacher_states), batch, layer_map)
        return combine(method, token_losses, masks, extra)


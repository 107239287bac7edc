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

import contextlib

import torch

from ..config import DecodeConfig
from ..data import Batch
from ..methods.base import PREFIX_SOURCES, Method
from ..lm import Prefix, Seq2SeqLM


def _sample(lm: Seq2SeqLM, batch: Batch, decode: DecodeConfig) -> Prefix:
    """``model.generate(input_ids=…)`` as the paper's code calls it: the encoder runs inside."""
    with torch.no_grad():
        return lm.generate(lm.encode(batch.source_ids, batch.source_mask), decode)


def reference_prefix(source: str, batch: Batch, student: Seq2SeqLM, teacher: Seq2SeqLM | None,
                     sampling: DecodeConfig) -> Prefix:
    """The prefix set of ``source``, each sampling call encoding the sources afresh."""
    if source == "ground_truth":
        return batch.target
    if source == "teacher_offline":
        if batch.teacher_output is None:
            raise RuntimeError("this method needs the teacher's offline outputs, but the batch has none")
        return batch.teacher_output
    if source == "teacher_sample":
        return _sample(teacher, batch, sampling)
    if source == "student_sample":
        return _sample(student, batch, sampling)
    if source == "student_greedy":
        return _sample(student, batch, DecodeConfig(num_beams=1, do_sample=False,
                                                    max_new_tokens=sampling.max_new_tokens))
    raise ValueError(f"unknown prefix source {source!r}; known: {', '.join(PREFIX_SOURCES)}")


def _full_pass(lm: Seq2SeqLM, batch: Batch, prefix: Prefix, hidden: bool):
    """One ``model(input_ids=…, decoder_input_ids=…)`` call: encoder and decoder, nothing reused."""
    enc = lm.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)
    return enc, lm.forward(enc, prefix, hidden_states=hidden)


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

    Same signature and result as :func:`harness.step.fast.method_loss`. For each prefix source
    in turn: draw the prefixes (re-encoding), run the student (re-encoding, with gradient)
    and, if the loss needs it, the teacher (re-encoding, no gradient) over them, and add
    the weighted per-token mean. A method with hidden-state terms gets the hidden states of
    these per-term passes (the encoder's from the first term).
    """
    weights = {s: w for s, w in method.prefix_weights().items() if w != 0}
    hidden = method.needs_hidden_states
    device = batch.source_ids.device
    amp = (torch.autocast("cuda", dtype=autocast_dtype) if autocast_dtype is not None and device.type == "cuda"
           else contextlib.nullcontext())
    terms: dict[str, torch.Tensor] = {}
    loss = torch.zeros((), dtype=torch.float32, device=device)
    student_states: dict[str, list] = {"encoder": [], "decoder": []}
    teacher_states: dict[str, list] = {"encoder": [], "decoder": []}
    with amp:
        for source, weight in weights.items():
            prefix = reference_prefix(source, batch, student, teacher, sampling)
            s_enc, s_out = _full_pass(student, batch, prefix, hidden)
            teacher_logits = None
            if method.uses_teacher:
                with torch.no_grad():
                    t_enc, t_out = _full_pass(teacher, batch, prefix, hidden)
                teacher_logits = t_out.logits
            per_token = method.token_loss(s_out.logits, teacher_logits, prefix.tokens, source)
            mask = prefix.mask.to(per_token.dtype)
            terms[source] = (per_token * mask).sum() / mask.sum().clamp_min(1.0)
            loss = loss + weight * terms[source]
            if hidden:
                student_states["encoder"].append(s_enc.outputs.hidden_states)
                student_states["decoder"].append(s_out.decoder_hidden_states)
                if method.uses_teacher:
                    teacher_states["encoder"].append(t_enc.outputs.hidden_states)
                    teacher_states["decoder"].append(t_out.decoder_hidden_states)
        if hidden:
            pick = lambda states: None if not states["encoder"] else {  # noqa: E731
                "encoder": states["encoder"][0], "decoder": _stack_states(states["decoder"])}
            extra = method.extra_loss(pick(student_states), pick(teacher_states), batch, layer_map)
            if extra is not None:
                terms["extra"] = extra
                loss = loss + extra
    return loss, terms


def step_loss(mode: str):
    """The step-loss function of an execution mode: ``fast`` (the shared engine) or ``reference``."""
    from ..errors import HarnessError
    from .fast import method_loss

    if mode == "fast":
        return method_loss
    if mode == "reference":
        return reference_loss
    raise HarnessError(f"unknown execution mode {mode!r}; known: fast, reference")

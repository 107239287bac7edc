"""The fast training step: every method's loss, each piece of work once per batch.

One training step, top to bottom (:func:`method_loss`):

1. Encode the sources once with the student (with gradient) and, if the method needs
   the teacher, with the teacher (under inference mode). Both encoder outputs are shared
   by sampling and by every loss term (a method whose teacher reads the student's encoder
   output gets the student's in the teacher's decoder pass, step 3).
2. Collect each prefix set the method declares (ground truth, offline teacher outputs,
   online samples) with ``collect``; sampling runs without gradient. Teacher samples
   keep the logits they were drawn from, so the teacher never scores its own samples a
   second time.
3. Push all prefix sets through the student in ONE batched decoder pass (the encoder
   output is tiled). Teacher logits on a fixed prefix set the batch carries from the
   teacher-output store (``Batch.stored_teacher``, for the method's
   ``stored_teacher_sources``) are its top-k form made dense (:mod:`harness.methods.topk`);
   the sets that still lack teacher logits go through the teacher likewise, if the loss
   needs teacher logits (:func:`teacher_pass`). A step whose teacher logits all come from
   the store runs no teacher at all.
4. The method's per-token loss for each prefix source; :func:`harness.step.loss.combine`
   averages each over the source's non-pad tokens and sums them with the method's weights.
"""

from __future__ import annotations

import torch

from ..accounting import count_from_store
from ..config import DecodeConfig
from ..data import Batch
from ..lm import Seq2SeqLM
from ..methods.base import Method
from ..methods.topk import dense_log_probs
from .loss import autocast, combine, frozen
from .prefixes import Collect, collect_prefix, keeps_teacher_logits, stack_prefixes


def _clone_all(states):
    return None if states is None else tuple(h.clone() for h in states)


def teacher_pass(method: Method, teacher: Seq2SeqLM, student_enc, teacher_enc, prefix, repeat: int = 1,
                 hidden_states: bool = False):
    """The teacher's decoder over ``prefix``: on its own encoder output under inference mode, or, for a
    method whose teacher reads the student's encoder output, on that one with gradient flowing into it
    (the teacher's parameters frozen)."""
    if method.teacher_reads_student_encoder:
        with frozen(teacher.model):
            return teacher.forward(student_enc, prefix, repeat=repeat, hidden_states=hidden_states)
    with torch.inference_mode():
        return teacher.forward(teacher_enc, prefix, repeat=repeat, hidden_states=hidden_states)


def method_loss(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, batch: Batch,
                sampling: DecodeConfig, layer_map: dict | None = None, *,
                autocast_dtype: torch.dtype | None = None,
                collect: Collect = collect_prefix, totals: dict[str, float] | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The step loss of ``method`` on ``batch`` and its terms (one per prefix source, plus ``extra``).

    Each piece of work runs once: the encoders, one sampling call per online source,
    one student pass over all prefix sets, and one teacher pass over the prefix sets
    whose teacher logits did not already come out of sampling. Teacher work runs under
    ``torch.inference_mode`` (but the decoder pass of :func:`teacher_pass` on the student's
    encoder output); ``autocast_dtype`` (e.g. ``torch.bfloat16``) turns on
    autocast on CUDA. ``collect`` makes each prefix set (default: the batch's, or a fresh
    sample; a test may pass fixed prefixes). ``totals``: token counts of the whole
    accumulated batch (:func:`harness.step.accumulate.accumulated_step`). :mod:`harness.step.reference`
    computes the same loss the way the paper's code does, for comparison.
    """
    sources = list(method.active_prefix_weights())
    hidden = method.needs_hidden_states
    stored = {s: batch.stored_teacher[s] for s in method.stored_teacher_sources if s in batch.stored_teacher}
    live_teacher = "teacher_sample" in sources or (method.uses_teacher and any(s not in stored for s in sources))

    with autocast(batch.source_ids.device, autocast_dtype):
        # 1. encoders, once per batch
        student_enc = student.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)
        teacher_enc = None
        if method.needs_teacher and stored and not live_teacher:
            if getattr(teacher.model.config, "is_encoder_decoder", False):   # the encoder pass it did not run
                count_from_store(teacher.model, batch.source_ids.numel())
        elif method.needs_teacher:
            with torch.inference_mode():
                teacher_enc = teacher.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)

        # 2. prefixes (no gradient through sampling)
        keep = keeps_teacher_logits(method)
        prefixes = {s: collect(s, batch, student, student_enc, teacher, teacher_enc, sampling, keep) for s in sources}

        # 3. one decoder pass per model: the student over all prefix sets, the teacher over those still unscored
        stacked = stack_prefixes([prefixes[s] for s in sources], student.pad_id)
        student_out = student.forward(student_enc, stacked, repeat=len(sources), hidden_states=hidden)
        teacher_logits: dict[str, torch.Tensor | None] = {s: None for s in sources}
        teacher_states = None
        if method.uses_teacher:
            for s, dist in stored.items():
                if dist.indices.shape[:2] != prefixes[s].tokens.shape:
                    raise RuntimeError(f"the stored teacher distributions on {s!r} have shape "
                                       f"{list(dist.indices.shape[:2])}, its prefixes {list(prefixes[s].tokens.shape)}")
                teacher_logits[s] = dense_log_probs(dist)
                count_from_store(teacher.model, prefixes[s].tokens.numel())
            unscored = [s for s in sources if prefixes[s].logits is None and s not in stored]
            for s in sources:
                if prefixes[s].logits is not None:
                    teacher_logits[s] = prefixes[s].logits
            if unscored:
                out = teacher_pass(method, teacher, student_enc, teacher_enc,
                                   stack_prefixes([prefixes[s] for s in unscored], student.pad_id),
                                   repeat=len(unscored), hidden_states=hidden)
                logits = out.logits.clone()
                n = len(batch)
                for i, s in enumerate(unscored):
                    teacher_logits[s] = logits[i * n:(i + 1) * n, :prefixes[s].tokens.shape[1]]
                if hidden:
                    teacher_states = {"encoder": _clone_all(teacher_enc.outputs.hidden_states),  # None: decoder-only
                                      "decoder": _clone_all(out.decoder_hidden_states)}

        # 4. per-token losses, then the weighted per-source means
        # (split, not row slicing: its backward is one concatenation instead of a zero-filled copy per set)
        per_source = student_out.logits.split(len(batch))
        token_losses = {s: method.token_loss(per_source[i][:, :prefixes[s].tokens.shape[1]], teacher_logits[s],
                                             prefixes[s].tokens, s) for i, s in enumerate(sources)}
        extra = None
        if hidden:
            states = {"encoder": student_enc.outputs.hidden_states, "decoder": student_out.decoder_hidden_states}
            extra = method.extra_loss(states, teacher_states, batch, layer_map) if totals is None \
                else method.extra_loss(states, teacher_states, batch, layer_map, totals=totals)
        return combine(method, token_losses, {s: prefixes[s].mask for s in sources}, extra, totals)

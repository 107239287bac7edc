"""The fast training step: every method's loss, each piece of work once per batch.

One training step, top to bottom (:func:`method_loss`):

1. Encode the sources once with the student (with gradient) and, if needed, with the
   teacher (under inference mode). Both encoder outputs are shared by sampling and by
   every loss term.
2. Collect each prefix set the method declares (ground truth, offline teacher outputs,
   online samples); sampling runs without gradient. Teacher samples keep the logits
   they were drawn from, so the teacher never scores its own samples a second time.
3. Push all prefix sets through the student in ONE batched decoder pass (the encoder
   output is tiled), and the sets that still lack teacher logits through the teacher
   likewise, if the loss needs teacher logits.
4. For each prefix source: the method's per-token loss, averaged over the source's
   non-pad tokens; the step loss is the weighted sum of these means.
"""

from __future__ import annotations

import contextlib

import torch

from ..config import DecodeConfig
from ..data import Batch
from ..lm import Prefix, Seq2SeqLM
from ..methods.base import PREFIX_SOURCES, Method


def stack_prefixes(prefixes: list[Prefix], pad_id: int) -> Prefix:
    """Concatenate prefix sets along the batch axis, right-padded to one width (one set: as it is, no copy)."""
    if len(prefixes) == 1:
        return Prefix(prefixes[0].tokens, prefixes[0].mask)
    width = max(p.tokens.shape[1] for p in prefixes)
    tokens, masks = [], []
    for p in prefixes:
        extra = width - p.tokens.shape[1]
        tokens.append(torch.nn.functional.pad(p.tokens, (0, extra), value=pad_id))
        masks.append(torch.nn.functional.pad(p.mask, (0, extra), value=0))
    return Prefix(torch.cat(tokens), torch.cat(masks))


def collect_prefix(source: str, batch: Batch, student: Seq2SeqLM, student_enc, teacher: Seq2SeqLM | None,
                   teacher_enc, sampling: DecodeConfig, keep_teacher_logits: bool = False) -> Prefix:
    """The prefix set of ``source`` for ``batch``; sampling reuses the given encoder outputs.

    ``keep_teacher_logits``: teacher samples also carry the logits they were drawn from
    (``Prefix.logits``, single-beam sampling only) so the teacher need not score them again.
    """
    if source == "ground_truth":
        return batch.target
    if source == "teacher_offline":
        if batch.teacher_output is None:
            raise RuntimeError("this method needs the teacher's offline outputs, but the batch has none")
        return batch.teacher_output
    if source == "teacher_sample":
        keep = keep_teacher_logits and sampling.num_beams == 1 and getattr(teacher, "returns_sampling_logits", False)
        with torch.inference_mode():
            prefix = teacher.generate(teacher_enc, sampling, return_logits=True) if keep \
                else teacher.generate(teacher_enc, sampling)
        return _outside_inference(prefix)
    if source in ("student_sample", "student_greedy"):
        decode = sampling if source == "student_sample" else DecodeConfig(
            num_beams=1, do_sample=False, max_new_tokens=sampling.max_new_tokens)
        with torch.inference_mode():
            prefix = student.generate(student_enc, decode)
        return _outside_inference(prefix)
    raise ValueError(f"unknown prefix source {source!r}; known: {', '.join(PREFIX_SOURCES)}")


def _outside_inference(prefix: Prefix) -> Prefix:
    """Ordinary copies of tensors made under ``torch.inference_mode`` (a little faster than ``no_grad``).

    Inference tensors may not be saved for backward, and a method's token loss may
    save its inputs (e.g. ``gather`` saves the token ids), so anything that enters the
    loss is copied once; the copy is small next to the pass that made it.
    """
    copy = lambda t: None if t is None else t.clone()  # noqa: E731
    return Prefix(copy(prefix.tokens), copy(prefix.mask), copy(prefix.logits))


def _clone_all(states):
    return None if states is None else tuple(h.clone() for h in states)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    """bf16/fp16 autocast on CUDA when asked; a no-op elsewhere (CPU steps stay in float32)."""
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def method_loss(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, batch: Batch,
                sampling: DecodeConfig, layer_map: dict | None = None, *,
                autocast_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The step loss of ``method`` on ``batch`` and its terms (one per prefix source, plus ``extra``).

    Each piece of work runs once: the encoders, one sampling call per online source,
    one student pass over all prefix sets, and one teacher pass over the prefix sets
    whose teacher logits did not already come out of sampling. Teacher work runs under
    ``torch.inference_mode``; ``autocast_dtype`` (e.g. ``torch.bfloat16``) turns on
    autocast on CUDA. :mod:`harness.step.reference` computes the same loss the way the
    paper's code does, for comparison.
    """
    weights = {s: w for s, w in method.prefix_weights().items() if w != 0}
    sources = list(weights)
    hidden = method.needs_hidden_states
    needs_teacher = method.uses_teacher or "teacher_sample" in weights

    with _autocast(batch.source_ids.device, autocast_dtype):
        # 1. encoders, once per batch
        student_enc = student.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)
        teacher_enc = None
        if needs_teacher:
            with torch.inference_mode():
                teacher_enc = teacher.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)

        # 2. prefixes (no gradient through sampling); teacher samples keep their logits when
        # the loss needs teacher logits and nothing else from a teacher pass (hidden states)
        keep = method.uses_teacher and not hidden
        prefixes = {s: collect_prefix(s, batch, student, student_enc, teacher, teacher_enc, sampling, keep)
                    for s in sources}

        # 3. one decoder pass per model: the student over all prefix sets, the teacher over those still unscored
        stacked = stack_prefixes([prefixes[s] for s in sources], student.pad_id)
        student_out = student.forward(student_enc, stacked, repeat=len(sources), hidden_states=hidden)
        teacher_logits: dict[str, torch.Tensor | None] = {s: None for s in sources}
        teacher_states = None
        if method.uses_teacher:
            unscored = [s for s in sources if prefixes[s].logits is None]
            for s in sources:
                if prefixes[s].logits is not None:
                    teacher_logits[s] = prefixes[s].logits
            if unscored:
                with torch.inference_mode():
                    out = teacher.forward(teacher_enc, stack_prefixes([prefixes[s] for s in unscored], student.pad_id),
                                          repeat=len(unscored), hidden_states=hidden)
                logits = out.logits.clone()
                n = len(batch)
                for i, s in enumerate(unscored):
                    teacher_logits[s] = logits[i * n:(i + 1) * n, :prefixes[s].tokens.shape[1]]
                if hidden:
                    teacher_states = {"encoder": _clone_all(teacher_enc.outputs.hidden_states),  # None: decoder-only
                                      "decoder": _clone_all(out.decoder_hidden_states)}

        # 4. per-token losses, averaged per source over non-pad tokens, then weighted
        # (split, not row slicing: its backward is one concatenation instead of a zero-filled copy per set)
        per_source = student_out.logits.split(len(batch))
        terms: dict[str, torch.Tensor] = {}
        loss = student_out.logits.new_zeros((), dtype=torch.float32)
        for i, source in enumerate(sources):
            prefix = prefixes[source]
            per_token = method.token_loss(per_source[i][:, :prefix.tokens.shape[1]], teacher_logits[source],
                                          prefix.tokens, source)
            mask = prefix.mask.to(per_token.dtype)
            terms[source] = (per_token * mask).sum() / mask.sum().clamp_min(1.0)
            loss = loss + weights[source] * terms[source]
        if hidden:
            extra = method.extra_loss(
                {"encoder": student_enc.outputs.hidden_states, "decoder": student_out.decoder_hidden_states},
                teacher_states, batch, layer_map)
            if extra is not None:
                terms["extra"] = extra
                loss = loss + extra
    return loss, terms

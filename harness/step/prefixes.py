"""Where a step's target prefixes come from: the batch (ground truth, offline teacher
outputs) or a model sampled this step (teacher or student samples, greedy decodes).

:func:`collect_prefix` is the fast step's sampler and the default of every step's
``collect`` parameter; a test passes its own (e.g. fixed prefixes instead of samples)
instead of patching this module. The reference and bare steps reuse
:func:`batch_prefix` and :func:`student_greedy` and keep their own calling structure.
"""

from __future__ import annotations

import dataclasses

from typing import Callable

import torch

from ..config import DecodeConfig
from ..data import Batch
from ..lm import Prefix, Seq2SeqLM
from ..methods.base import PREFIX_SOURCES, Method

#: ``collect(source, batch, student, student_enc, teacher, teacher_enc, sampling, keep_teacher_logits) -> Prefix``
Collect = Callable[..., Prefix]

#: The prefix sources a step draws from a model (the others come with the batch).
ONLINE_SOURCES = ("teacher_sample", "student_sample", "student_greedy")


def batch_prefix(source: str, batch: Batch) -> Prefix:
    """The prefix set of a source that comes with the batch (``ground_truth``, ``teacher_offline``)."""
    if source == "ground_truth":
        return batch.target
    if source == "teacher_offline":
        if batch.teacher_output is None:
            raise RuntimeError("this method needs the teacher's offline outputs, but the batch has none")
        return batch.teacher_output
    raise ValueError(f"unknown prefix source {source!r}; known: {', '.join(PREFIX_SOURCES)}")


def decode_config(source: str, sampling: DecodeConfig) -> DecodeConfig:
    """How ``source`` decodes: ``student_greedy`` greedily, the samples with ``sampling``. The greedy decode keeps
    the samples' length limits and no-repeat size: the reference decodes ENGINE's prefixes with the same
    ``generate`` call as every online sample (``dart/kd.py:352-371``), which adds bart-large's minimum length and
    no-repeat size to both."""
    if source == "student_greedy":
        return dataclasses.replace(sampling, num_beams=1, do_sample=False, top_k=None, top_p=None)
    return sampling


def keeps_teacher_logits(method: Method) -> bool:
    """Whether teacher samples should keep the logits they were drawn from: the loss needs teacher
    logits and nothing else from a teacher pass (hidden states would need that pass anyway), and the
    teacher scores on its own encoder output (sampling read that one)."""
    return method.uses_teacher and not method.needs_hidden_states and not method.teacher_reads_student_encoder


def collect_prefix(source: str, batch: Batch, student: Seq2SeqLM, student_enc, teacher: Seq2SeqLM | None,
                   teacher_enc, sampling: DecodeConfig, keep_teacher_logits: bool = False) -> Prefix:
    """The prefix set of ``source`` for ``batch``; sampling reuses the given encoder outputs.

    ``keep_teacher_logits``: teacher samples also carry the logits they were drawn from
    (``Prefix.logits``, single-beam sampling only) so the teacher need not score them again.
    """
    if source not in ONLINE_SOURCES:
        return batch_prefix(source, batch)
    decode = decode_config(source, sampling)
    if source == "teacher_sample":
        keep = keep_teacher_logits and decode.num_beams == 1 and getattr(teacher, "returns_sampling_logits", False)
        with torch.inference_mode():
            prefix = teacher.generate(teacher_enc, decode, return_logits=True) if keep \
                else teacher.generate(teacher_enc, decode)
    else:
        with torch.inference_mode():
            prefix = student.generate(student_enc, decode)
    return outside_inference(prefix)


def outside_inference(prefix: Prefix) -> Prefix:
    """Ordinary copies of tensors made under ``torch.inference_mode`` (a little faster than ``no_grad``).

    Inference tensors may not be saved for backward, and a method's token loss may
    save its inputs (e.g. ``gather`` saves the token ids), so anything that enters the
    loss is copied once; the copy is small next to the pass that made it.
    """
    copy = lambda t: None if t is None else t.clone()  # noqa: E731
    return Prefix(copy(prefix.tokens), copy(prefix.mask), copy(prefix.logits))


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

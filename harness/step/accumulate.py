"""Gradient accumulation: one optimizer step over several micro-batches, with the loss of one big batch.

A step's loss averages each prefix source over its tokens. Accumulating per-micro-batch
means would weigh a short micro-batch's tokens more than a long one's, so the micro-batches
are normalised by the token counts of the *whole* accumulated batch instead. Those counts
include the online samples, so every micro-batch's prefixes are collected first (the
weights do not change within an optimizer step, so sampling early changes nothing), then
each micro-batch's loss is computed and backpropagated, one at a time:

    loss = Σ_micro Σ_source weight[source] · Σ_{tokens of source in micro} token_loss / N_source(all micro)
"""

from __future__ import annotations

from typing import Callable

import torch

from ..config import DecodeConfig
from ..data import Batch
from ..lm import Seq2SeqLM
from ..methods.base import Method
from .fast import method_loss
from .prefixes import Collect, collect_prefix, keeps_teacher_logits


def collect_all(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, batch: Batch,
                sampling: DecodeConfig, collect: Collect = collect_prefix) -> dict:
    """Every active prefix set of ``batch`` (sampling from encoder passes without gradient)."""
    sources = method.active_prefix_weights()
    with torch.inference_mode():   # (the student always: with dropout its encoder pass draws random numbers)
        student_enc = student.encode(batch.source_ids, batch.source_mask)
        teacher_enc = teacher.encode(batch.source_ids, batch.source_mask) if "teacher_sample" in sources else None
    keep = keeps_teacher_logits(method)
    return {s: collect(s, batch, student, student_enc, teacher, teacher_enc, sampling, keep)
            for s in sources}


def accumulated_step(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, micro_batches: list[Batch],
                     sampling: DecodeConfig, layer_map: dict | None = None, *, collect: Collect = collect_prefix,
                     backward: Callable[[torch.Tensor], None] = torch.Tensor.backward
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and terms of ``micro_batches`` taken as one batch; ``backward`` runs on each micro-batch's
    share as soon as it is computed (so only one micro-batch's activations are alive at a time)."""
    collected = [collect_all(method, student, teacher, b, sampling, collect) for b in micro_batches]
    totals = {s: float(sum(float(c[s].mask.sum()) for c in collected)) for s in method.active_prefix_weights()}
    totals["encoder"] = float(sum(float(b.source_mask.sum()) for b in micro_batches))
    totals["decoder"] = float(sum(float(b.target_mask.sum()) for b in micro_batches))
    loss, terms = None, {}
    for batch, prefixes in zip(micro_batches, collected):
        def given(source, *args, _prefixes=prefixes, **kwargs):
            return _prefixes[source]

        part, part_terms = method_loss(method, student, teacher, batch, sampling, layer_map, collect=given,
                                       totals=totals)
        backward(part)
        loss = part.detach() if loss is None else loss + part.detach()
        for k, v in part_terms.items():
            terms[k] = v.detach() if k not in terms else terms[k] + v.detach()
    return loss, terms

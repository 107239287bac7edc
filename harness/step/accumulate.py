"""Gradient accumulation: one optimizer step over several micro-batches, with the loss of one big batch.

A step's loss averages each prefix source over its tokens. Accumulating per-micro-batch
means would weigh a short micro-batch's tokens more than a long one's, so the micro-batches
are normalised by the token counts of the *whole* accumulated batch instead. Those counts
include the online samples, so every micro-batch's prefixes are collected first (the
weights do not change within an optimizer step, so sampling early changes nothing), then
each micro-batch's loss is computed and backpropagated, one at a time:

    loss = Σ_micro Σ_source weight[source] · Σ_{tokens of source in micro} token_loss / N_source(all micro)

Data-parallel training (:func:`parallel_step`) is the same sum split over processes: each rank holds its shard
of every micro-batch, the token counts N_source are summed over the ranks before any loss is computed, each
rank backpropagates its own terms, and the gradients are then summed over the ranks. N ranks with shards of b
rows thus take the step of one process on the N·b rows (up to the order of float sums).
"""

from __future__ import annotations

from typing import Callable

import torch

from .. import distributed
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
                     backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
                     sum_totals: Callable[[dict[str, float]], dict[str, float]] | None = None
                     ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """Loss and terms of ``micro_batches`` taken as one batch; ``backward`` runs on each micro-batch's
    share as soon as it is computed (so only one micro-batch's activations are alive at a time).
    ``sum_totals``: turns this process's token counts into those of the global batch (data parallel:
    :func:`parallel_step`); the loss is None when ``micro_batches`` is empty."""
    collected = [collect_all(method, student, teacher, b, sampling, collect) for b in micro_batches]
    totals = {s: float(sum(float(c[s].mask.sum()) for c in collected)) for s in method.active_prefix_weights()}
    totals["encoder"] = float(sum(float(b.source_mask.sum()) for b in micro_batches))
    totals["decoder"] = float(sum(float(b.target_mask.sum()) for b in micro_batches))
    if sum_totals is not None:
        totals = sum_totals(totals)
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


def parallel_step(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, shards: list[Batch],
                  sampling: DecodeConfig, layer_map: dict | None = None, *, collect: Collect = collect_prefix,
                  backward: Callable[[torch.Tensor], None] = torch.Tensor.backward
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One data-parallel step: ``shards`` are this rank's rows of each micro-batch of the optimizer step (empty
    when the global batch has fewer rows than there are ranks). The token counts are summed over the ranks
    first, so each rank's loss is its part of the global batch's loss; after this rank's backward passes the
    gradients of the student are summed over the ranks (:func:`harness.distributed.all_reduce_gradients`).
    Returns the global batch's loss and terms, the same on every rank. In one process: :func:`accumulated_step`.
    """
    shards = [b for b in shards if len(b)]
    device = next(student.model.parameters()).device
    loss, terms = accumulated_step(method, student, teacher, shards, sampling, layer_map, collect=collect,
                                   backward=backward,
                                   sum_totals=lambda totals: distributed.sum_floats(totals, device))
    distributed.all_reduce_gradients(student.model.parameters())
    # the terms' names: rank 0 always holds rows (the first shard of a non-empty batch)
    names = [list(terms)]
    if distributed.world_size() > 1:
        import torch.distributed as dist

        dist.broadcast_object_list(names, src=0)
    values = torch.stack([terms[k].float() if k in terms else torch.zeros((), device=device) for k in names[0]]
                         + [loss.float() if loss is not None else torch.zeros((), device=device)])
    values = distributed.all_reduce_sum(values.detach().clone())
    return values[-1], {k: values[i] for i, k in enumerate(names[0])}

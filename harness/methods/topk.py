"""A teacher's next-token distributions in top-k form, and the divergences' top-k form.

A stored teacher distribution p_t is its k largest log-probabilities (with their token ids)
plus the log of the mass left over, r_t = 1 − Σ_top p_t(v). Every divergence of
:mod:`harness.methods.divergences` takes it through one reconstruction, :func:`dense_log_probs`:

    p̃_t(v) = p_t(v)            for the k stored tokens,
    p̃_t(v) = r_t / (V − k)     for each of the other V − k tokens (the tail spread uniformly).

So each method's own per-token loss runs unchanged on log p̃ in place of the teacher's logits
(log-probabilities are logits: their log-softmax is themselves), and every divergence stays
well defined below k = V: p̃ is a distribution with full support, so KL(q‖p̃), ENGINE's
cross-entropy, the skew and tempered KLs and the prefix log-ratio of ``js_exact`` are all
finite; a tail kept as one bucket instead would leave the tempered KL of word-KD and the
per-token terms of those functions undefined. At k = V there is no tail and p̃ = p exactly.
Below it the approximation keeps the teacher's top-k probabilities and the tail's total mass;
what it changes is how that mass is shared among the tail tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class TopK:
    """Teacher distributions in top-k form, per position: ``indices`` and ``log_probs`` [..., k]
    (descending), ``tail_log_mass`` [...] (log r, −inf where k = V) and the vocabulary size."""

    indices: torch.Tensor
    log_probs: torch.Tensor
    tail_log_mass: torch.Tensor
    vocab_size: int

    @property
    def k(self) -> int:
        return self.indices.shape[-1]


def top_k(logits: torch.Tensor, k: int) -> TopK:
    """The top-k form of the distributions softmax(``logits``) [..., V] (in float32 at least)."""
    log_p = F.log_softmax(logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, dim=-1)
    vocab = log_p.shape[-1]
    k = min(k, vocab)
    values, indices = log_p.topk(k, dim=-1)
    if k == vocab:
        tail = torch.full(log_p.shape[:-1], -math.inf, dtype=log_p.dtype, device=log_p.device)
    else:   # the rest's log-sum-exp, straight from the logits (1 − Σ top would cancel badly)
        tail = log_p.scatter(-1, indices, -math.inf).logsumexp(-1)
    return TopK(indices, values, tail, vocab)


def dense_log_probs(dist: TopK) -> torch.Tensor:
    """log p̃ [..., V]: the stored log-probabilities at their tokens, the tail mass spread uniformly
    over the other V − k tokens (none at k = V: then exactly the teacher's log-probabilities)."""
    log_probs = dist.log_probs.float()
    shape = (*log_probs.shape[:-1], dist.vocab_size)
    spare = dist.vocab_size - dist.k
    if spare == 0:
        dense = torch.empty(shape, dtype=log_probs.dtype, device=log_probs.device)
    else:
        per_token = dist.tail_log_mass.float() - math.log(spare)
        dense = per_token.unsqueeze(-1).expand(shape).clone()
    return dense.scatter(-1, dist.indices.long(), log_probs)


def padded_rows(rows: list[TopK]) -> TopK:
    """Rows [T_i, k] stacked into one [B, max T_i, k], right-padded with the uniform distribution (finite
    everywhere, so that a masked loss at a pad position is a finite number times 0)."""
    vocab, k = rows[0].vocab_size, rows[0].k
    width = max(r.indices.shape[0] for r in rows)
    indices = torch.arange(k, dtype=rows[0].indices.dtype).expand(len(rows), width, k).clone()
    log_probs = torch.full((len(rows), width, k), -math.log(vocab), dtype=rows[0].log_probs.dtype)
    uniform_tail = math.log((vocab - k) / vocab) if vocab > k else -math.inf
    tail = torch.full((len(rows), width), uniform_tail, dtype=rows[0].tail_log_mass.dtype)
    for i, r in enumerate(rows):
        n = r.indices.shape[0]
        indices[i, :n], log_probs[i, :n], tail[i, :n] = r.indices, r.log_probs, r.tail_log_mass
    return TopK(indices, log_probs, tail, vocab)

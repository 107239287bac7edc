"""What every execution mode of the step computes the same way: the autocast context and
the step loss from per-token losses.

    loss = Σ_source weight[source] · mean_{non-pad tokens of source} token_loss  (+ extra)
"""

from __future__ import annotations

import contextlib

import torch

from ..methods.base import Method


def autocast(device: torch.device, dtype: torch.dtype | None):
    """bf16/fp16 autocast on CUDA when asked; a no-op elsewhere (CPU steps stay in float32)."""
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def masked_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``per_token`` [B, T] over the positions ``mask`` marks (0 if it marks none)."""
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp_min(1.0)


def combine(method: Method, token_losses: dict[str, torch.Tensor], masks: dict[str, torch.Tensor],
            extra: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The step loss and its terms from each active source's per-token loss and mask.

    Terms: the masked mean of each source (in the method's declaration order), and
    ``extra`` (a loss that is not per token, e.g. hidden-state matching) when given.
    The loss is the weighted sum of the source terms, plus ``extra``, in float32.
    """
    weights = method.active_prefix_weights()
    device = next(iter(token_losses.values()), extra).device
    terms: dict[str, torch.Tensor] = {}
    loss = torch.zeros((), dtype=torch.float32, device=device)
    for source, weight in weights.items():
        terms[source] = masked_mean(token_losses[source], masks[source])
        loss = loss + weight * terms[source]
    if extra is not None:
        terms["extra"] = extra
        loss = loss + extra
    return loss, terms

"""What every execution mode of the step computes the same way: the autocast context, the
frozen teacher (for a loss that backpropagates through it) and the step loss from per-token
losses.

    loss = Σ_source weight[source] · mean_{non-pad tokens of source} token_loss  (+ extra)

With gradient accumulation the mean of each source runs over the tokens of the whole
accumulated batch: each micro-batch's sum is divided by the accumulated batch's token
count (``totals``), so the micro-batch losses add up to the loss of one big batch.
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


@contextlib.contextmanager
def frozen(model: torch.nn.Module):
    """Run ``model`` with gradient flowing through it to its inputs but none to its parameters: the
    teacher's decoder on the student's encoder output (:attr:`Method.teacher_reads_student_encoder`)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def masked_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``per_token`` [B, T] over the positions ``mask`` marks (0 if it marks none)."""
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp_min(1.0)


def check_token_loss(method: Method, source: str, per_token, mask: torch.Tensor) -> None:
    """The plugin contract where it is crossed: ``token_loss`` returns a floating [B, T] tensor."""
    from ..errors import HarnessError

    if not isinstance(per_token, torch.Tensor) or not per_token.is_floating_point() \
            or tuple(per_token.shape) != tuple(mask.shape):
        got = (f"a {per_token.dtype} tensor of shape {list(per_token.shape)}" if isinstance(per_token, torch.Tensor)
               else type(per_token).__name__)
        raise HarnessError(f"method {method.name!r}: token_loss for {source!r} returned {got}; expected one loss "
                           f"per position, a floating tensor of shape [B, T] = {list(mask.shape)} (reduce the "
                           f"vocabulary axis inside token_loss)")


def combine(method: Method, token_losses: dict[str, torch.Tensor], masks: dict[str, torch.Tensor],
            extra: torch.Tensor | None = None, totals: dict[str, float] | None = None
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The step loss and its terms from each active source's per-token loss and mask.

    Terms: the masked mean of each source (in the method's declaration order), and
    ``extra`` (a loss that is not per token, e.g. hidden-state matching) when given.
    The loss is the weighted sum of the source terms, plus ``extra``, in float32.
    ``totals``: source → token count of the whole accumulated batch, the denominator
    of each source's mean instead of this batch's own count.
    """
    weights = method.active_prefix_weights()
    device = next(iter(token_losses.values()), extra).device
    terms: dict[str, torch.Tensor] = {}
    loss = torch.zeros((), dtype=torch.float32, device=device)
    for source, weight in weights.items():
        check_token_loss(method, source, token_losses[source], masks[source])
        if totals is None:
            terms[source] = masked_mean(token_losses[source], masks[source])
        else:
            per_token = token_losses[source]
            terms[source] = (per_token * masks[source].to(per_token.dtype)).sum() / max(totals[source], 1.0)
        loss = loss + weight * terms[source]
    if extra is not None:
        terms["extra"] = extra
        loss = loss + extra
    return loss, terms

"""Per-token divergences between next-token distributions, from logits.

Sign convention everywhere: p is the teacher, q the student, and each function
returns a non-negative [..., ] tensor with the vocabulary axis (last) summed out.
Temperature is 1 (PAPER.md §2) unless a caller scales the logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def forward_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(p‖q) = Σ_v p(v) (log p(v) − log q(v))."""
    log_q = F.log_softmax(student_logits, dim=-1)
    log_p = F.log_softmax(teacher_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(q‖p) = Σ_v q(v) (log q(v) − log p(v)); the gradient flows through both q factors."""
    log_q = F.log_softmax(student_logits, dim=-1)
    log_p = F.log_softmax(teacher_logits, dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum(-1)


def total_variation(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """TVD(p, q) = ½ Σ_v |p(v) − q(v)|."""
    q = F.softmax(student_logits, dim=-1)
    p = F.softmax(teacher_logits, dim=-1)
    return 0.5 * (q - p).abs().sum(-1)


def kl_to_mixture(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float,
                  side: str) -> torch.Tensor:
    """KL(q‖m) (side="student") or KL(p‖m) (side="teacher"), m = β·q + (1−β)·p.

    As in the reference code, log m is taken as log(m + 1e-10) and the gradient also
    flows through m.
    """
    log_q = F.log_softmax(student_logits, dim=-1)
    log_p = F.log_softmax(teacher_logits, dim=-1)
    q, p = log_q.exp(), log_p.exp()
    log_m = torch.log(beta * q + (1.0 - beta) * p + 1e-10)
    if side == "student":
        return (q * (log_q - log_m)).sum(-1)
    if side == "teacher":
        return (p * (log_p - log_m)).sum(-1)
    raise ValueError(f"side must be 'student' or 'teacher', got {side!r}")


def teacher_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """ENGINE's energy: −Σ_v q(v) log p(v) (reverse KL without the student entropy)."""
    q = F.softmax(student_logits, dim=-1)
    log_p = F.log_softmax(teacher_logits, dim=-1)
    return -(q * log_p).sum(-1)


def token_nll(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """−log q(y_t) of the given tokens."""
    return -F.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

"""Per-token divergences between next-token distributions, from logits.

Sign convention everywhere: p is the teacher, q the student, and each function
returns a non-negative [..., ] tensor with the vocabulary axis (last) summed out.
Temperature is 1 (PAPER.md §2) unless a caller scales the logits.
"""

from __future__ import annotations

import math

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


# ---------------------------------------------------------------- beyond the paper
# The functions below work in log space and in at least float32 (half-precision logits
# are upcast), so that mixtures with a weight of 0 or 1 and long prefixes stay exact.

def _log_softmax32(logits: torch.Tensor) -> torch.Tensor:
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.log_softmax(logits, dim=-1)


def _log(weight: float) -> float:
    return math.log(weight) if weight > 0 else -math.inf


def _kl_to_log_mixture(log_a: torch.Tensor, log_b: torch.Tensor, weight_a: float) -> torch.Tensor:
    """KL(a‖m) with m = weight_a·a + (1 − weight_a)·b; gradients flow through a, b and m."""
    log_m = torch.logaddexp(log_a + _log(weight_a), log_b + _log(1.0 - weight_a))
    return (log_a.exp() * (log_a - log_m)).sum(-1)


def generalized_jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float) -> torch.Tensor:
    """Generalised JSD of GKD (Agarwal et al., 2024), with TRL's conventions.

    JSD(β) = β·KL(p‖M) + (1−β)·KL(q‖M), M = β·p + (1−β)·q — here β weighs the *teacher*
    (the opposite of :func:`kl_to_mixture`'s β). The endpoints are defined as TRL
    defines them: β = 0 is forward KL(p‖q), β = 1 is reverse KL(q‖p). (The formula
    itself vanishes at both ends; JSD(β)/β → KL(p‖q) as β → 0 and JSD(β)/(1−β) → KL(q‖p)
    as β → 1, which is why the endpoints are set separately.) Gradients flow through q and M.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    log_q, log_p = _log_softmax32(student_logits), _log_softmax32(teacher_logits)
    if beta == 0.0:
        return (log_p.exp() * (log_p - log_q)).sum(-1)
    if beta == 1.0:
        return (log_q.exp() * (log_q - log_p)).sum(-1)
    return beta * _kl_to_log_mixture(log_p, log_q, beta) + (1.0 - beta) * _kl_to_log_mixture(log_q, log_p, 1.0 - beta)


def skew_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """Skew KL of DistiLLM (Ko et al., 2024): KL(p ‖ α·p + (1−α)·q); α = 0 is KL(p‖q).

    DistiLLM's code drops the constant teacher entropy Σ p log p (a cross-entropy); it is
    kept here so the value is a divergence (≥ 0, 0 iff q = p). The gradient is the same.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    log_q, log_p = _log_softmax32(student_logits), _log_softmax32(teacher_logits)
    return _kl_to_log_mixture(log_p, log_q, alpha)


def skew_reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """Skew reverse KL of DistiLLM: KL(q ‖ (1−α)·p + α·q); α = 0 is KL(q‖p). Gradients flow through q and the mixture."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    log_q, log_p = _log_softmax32(student_logits), _log_softmax32(teacher_logits)
    return _kl_to_log_mixture(log_q, log_p, alpha)


def adaptive_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mu: float = 0.5) -> torch.Tensor:
    """Adaptive KL of Wu et al. (COLING 2025): g_head/g · KL(p‖q) + g_tail/g · KL(q‖p).

    Sort the vocabulary by teacher probability, descending; the *head* is the leading
    tokens whose cumulative teacher mass is at most μ (up to 1e-6 of rounding), and always
    the top token; the rest is the *tail*. g_head = Σ_head |p − q|, g_tail = Σ_tail |p − q|,
    g = g_head + g_tail.
    As in the authors' code the weights are computed from a detached q (no gradient flows
    through them). Where g = 0 (q = p) both weights are ½; both KLs are 0 there anyway.
    """
    log_q, log_p = _log_softmax32(student_logits), _log_softmax32(teacher_logits)
    p, q = log_p.exp(), log_q.exp()
    with torch.no_grad():
        p_sorted, order = p.sort(dim=-1, descending=True, stable=True)
        gap = (p_sorted - q.detach().gather(-1, order)).abs()
        # float64 sums and 1e-6 of slack for rounding: μ = 1 must put every token in the head
        tail = p_sorted.double().cumsum(dim=-1) > mu + 1e-6
        tail[..., 0] = False
        g_head = gap.masked_fill(tail, 0.0).sum(-1)
        g_tail = gap.masked_fill(~tail, 0.0).sum(-1)
        total = g_head + g_tail
        w_head = torch.where(total > 0, g_head / total.clamp_min(torch.finfo(total.dtype).tiny),
                             torch.full_like(total, 0.5))
    forward = (p * (log_p - log_q)).sum(-1)
    reverse = (q * (log_q - log_p)).sum(-1)
    return w_head * forward + (1.0 - w_head) * reverse


def prefix_log_ratio(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     tokens: torch.Tensor) -> torch.Tensor:
    """log q(y_<t) − log p(y_<t) = Σ_{s<t} [log q_s(y_s) − log p_s(y_s)], per position [B, T] (0 at t = 0).

    Positions after a row's end hold whatever the padding gives; they only feed later
    positions of the same row, which are padding too.
    """
    log_q, log_p = _log_softmax32(student_logits), _log_softmax32(teacher_logits)
    index = tokens.unsqueeze(-1)
    step = (log_q.gather(-1, index) - log_p.gather(-1, index)).squeeze(-1)
    return F.pad(step[..., :-1].cumsum(dim=-1), (1, 0))


def kl_to_sequence_mixture(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tokens: torch.Tensor,
                           beta: float, side: str, weight_grad: bool = True) -> torch.Tensor:
    """KL(q_t‖m_t) (side="student") or KL(p_t‖m_t) (side="teacher") with the *exact* step mixture.

    M = β·q + (1−β)·p is the mixture of the two sequence distributions; its next-token
    distribution on the prefix y_<t is

        m_t(v) = M(y_<t v) / M(y_<t) = w_t·q_t(v) + (1−w_t)·p_t(v),
        w_t = β·q(y_<t) / (β·q(y_<t) + (1−β)·p(y_<t)) = sigmoid(log(β/(1−β)) + log q(y_<t) − log p(y_<t)),

    so that, exactly, KL(q‖M) = E_{y~q} Σ_t KL(q_t‖m_t) and KL(p‖M) = E_{y~p} Σ_t KL(p_t‖m_t).
    ``tokens`` [B, T] are the prefix tokens y_t (position 0 starts the target). With
    ``weight_grad`` (the default) the gradient also flows through w_t, i.e. through the
    student's probability of the prefix: on teacher prefixes that is the exact gradient of
    KL(p‖M), since M depends on the student through w_t as well as through q_t.
    """
    if side not in ("student", "teacher"):
        raise ValueError(f"side must be 'student' or 'teacher', got {side!r}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    log_q, log_p = _log_softmax32(student_logits), _log_softmax32(teacher_logits)
    z = prefix_log_ratio(student_logits, teacher_logits, tokens) + (_log(beta) - _log(1.0 - beta))
    if not weight_grad:
        z = z.detach()
    log_w, log_1mw = F.logsigmoid(z).unsqueeze(-1), F.logsigmoid(-z).unsqueeze(-1)
    log_m = torch.logaddexp(log_w + log_q, log_1mw + log_p)
    log_a = log_q if side == "student" else log_p
    return (log_a.exp() * (log_a - log_m)).sum(-1)

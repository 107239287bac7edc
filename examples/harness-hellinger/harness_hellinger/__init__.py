"""Squared Hellinger distillation: a method plugin that lives outside the harness.

It is registered by the ``harness.methods`` entry point in ``pyproject.toml``, not by a
decorator, so importing it has no side effects.
"""

import torch.nn.functional as F

from harness.methods import Method


class Hellinger(Method):
    """Step-wise squared Hellinger H²(p_t, q_t) = ½·Σ_v (√p_t(v) − √q_t(v))², half on teacher outputs, half on student samples.

    H² lies in [0, 1] and H² ≤ TVD ≤ √2·H, so it behaves like ``tvd`` with a smooth
    gradient near p = q. The square roots are taken in log space: √p = exp(½ log p).
    """

    prefixes = {"teacher_offline": 0.5, "student_sample": 0.5}

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        sqrt_q = (0.5 * F.log_softmax(student_logits, dim=-1)).exp()
        sqrt_p = (0.5 * F.log_softmax(teacher_logits, dim=-1)).exp()
        return 0.5 * (sqrt_p - sqrt_q).pow(2).sum(-1)

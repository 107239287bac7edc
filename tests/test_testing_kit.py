"""The plugin test kit's tolerances follow the loss being checked, and still catch a wrong loss."""

from __future__ import annotations

import pytest
import torch

from harness.methods import Method
from harness.testing import check_token_loss


class AlphaDivergence(Method):
    """D_α(p‖q) = (1 − Σ_v p^α q^(1−α)) / (α(1−α)): rounding is amplified by 1/(α(1−α)) for small α."""

    prefixes = {"teacher_offline": 1.0}

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        a = self.alpha
        # computed in float32, as losses written for mixed precision are
        log_q, log_p = student_logits.float().log_softmax(-1), teacher_logits.float().log_softmax(-1)
        mixed = (a * log_p + (1 - a) * log_q).exp().sum(-1)   # at q = p: Σ p, 1 up to float32 rounding
        return ((1 - mixed) / (a * (1 - a))).to(student_logits.dtype)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9, 0.02])
def test_a_correct_alpha_divergence_passes_for_any_alpha(alpha):
    check_token_loss(AlphaDivergence(alpha))


class LeakyDivergence(AlphaDivergence):
    """Correct per token, but each row's loss also depends on the other rows' logits."""

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return super().token_loss(student_logits, teacher_logits, tokens, source) + 1e-3 * student_logits.mean()


def test_the_kit_still_catches_a_loss_that_leaks_across_rows():
    with pytest.raises(AssertionError, match="padded positions change|scored alone differs"):
        check_token_loss(LeakyDivergence(0.1))


def test_an_explicit_atol_is_used_as_given():
    with pytest.raises(AssertionError):
        check_token_loss(AlphaDivergence(0.02), atol=1e-9)

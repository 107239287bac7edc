"""The plugin's own tests, written with the harness's testing helpers."""

import pytest
import torch

from harness.testing import check_engine_step, check_token_loss, random_logits
from harness_hellinger import Hellinger


@pytest.mark.parametrize("seed", range(5))
def test_token_loss_properties(seed):
    check_token_loss(Hellinger(), seed=seed)


def test_bounds():
    student, teacher = random_logits(0, (4, 6, 9))
    h2 = Hellinger().token_loss(student, teacher, None, "student_sample")
    tvd = 0.5 * (student.softmax(-1) - teacher.softmax(-1)).abs().sum(-1)
    assert (h2 <= tvd + 1e-12).all() and (tvd <= (2 * h2).sqrt() + 1e-12).all()


def test_one_engine_step():
    assert check_engine_step(Hellinger()) > 0

"""Where the variance comes from (harness/reporting/variance.py): on simulated scores with known parts, the
estimates recover them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.reporting.variance import design_variance, estimate

SD_TEACHER, SD_SEED, SD_VALUE, SD_SAMPLE = 1.0, 0.5, 3.0, 2.0


def simulate(rng, teachers=200, seeds=3, decodes=2, inputs=50, draws=200):
    """Per-input scores y[t, s, d, i] = a_t + b_ts + v_i + e_tsdi: a teacher part, a seed part, the input's difficulty
    (shared by every run) and a sampled decoding's noise per input (so a decoding's corpus score varies by
    SD_SAMPLE²/m). Returns (scores[t][s] per decoding, resampled[t][s] as [draw, decoding], the realised v, m)."""
    v = SD_VALUE * rng.standard_normal(inputs)
    y = (SD_TEACHER * rng.standard_normal((teachers, 1, 1, 1)) + SD_SEED * rng.standard_normal((teachers, seeds, 1, 1))
         + v + SD_SAMPLE * rng.standard_normal((teachers, seeds, decodes, inputs)))
    counts = np.stack([np.bincount(d, minlength=inputs) for d in rng.integers(inputs, size=(draws, inputs))])
    boot = np.einsum("bi,tsdi->tsbd", counts.astype(float), y) / inputs
    scores = y.mean(axis=3)
    return ([[list(run) for run in teacher] for teacher in scores], [[run for run in teacher] for teacher in boot],
            v, inputs)


def test_the_estimates_recover_the_simulated_parts():
    rng = np.random.default_rng(3)
    scores, resampled, v, m = simulate(rng)
    c = estimate(scores, resampled, m)
    assert (c.teachers, c.runs, c.decodes, c.inputs) == (200, 600, 2, 50)
    assert c.teacher == pytest.approx(SD_TEACHER ** 2, rel=0.3)
    assert c.seed == pytest.approx(SD_SEED ** 2, rel=0.2)
    assert c.decode == pytest.approx(SD_SAMPLE ** 2 / m, rel=0.15)
    # one run over the inputs: (difficulty + sampling noise)/m; shared by every run: the difficulty alone (this test
    # set's: the bootstrap measures the inputs drawn)
    assert c.input_run == pytest.approx((v.var() + SD_SAMPLE ** 2) / m, rel=0.15)
    assert c.input_shared == pytest.approx(v.var() / m, rel=0.15)
    assert c.input_shared < c.input_run


def test_one_decoding_leaves_the_decoding_noise_in_the_seed_part_and_one_run_per_teacher_in_the_teacher_part():
    rng = np.random.default_rng(5)
    scores, _, _, m = simulate(rng, decodes=1)
    c = estimate(scores)
    assert math.isnan(c.decode) and math.isnan(c.input_run)
    assert c.seed == pytest.approx(SD_SEED ** 2 + SD_SAMPLE ** 2 / m, rel=0.2)
    one_run = estimate([[teacher[0]] for teacher in scores])
    assert math.isnan(one_run.seed)
    assert one_run.teacher == pytest.approx(SD_TEACHER ** 2 + SD_SEED ** 2 + SD_SAMPLE ** 2 / m, rel=0.3)
    assert math.isnan(estimate([scores[0]]).teacher)   # one teacher: no teacher part


def test_the_design_variance_of_a_mean():
    rng = np.random.default_rng(9)
    scores, resampled, _, _ = simulate(rng, teachers=60, seeds=3, decodes=1, draws=100)
    c = estimate(scores, resampled)
    expected = c.teacher / 3 + c.seed / 9 + c.input_shared
    assert design_variance(c, 3, 3) == pytest.approx(expected)
    assert design_variance(c, 6, 3) < design_variance(c, 3, 6) < design_variance(c, 3, 3)   # teachers buy more


SD_SHIFT, SD_GAIN = 0.8, 1.5   # a teacher's effect on one model beyond the other's; a model's gain on an input


def simulate_pair(rng, teachers=200, seeds=3, inputs=50, draws=200):
    """Two models on one test set: y[r, t, s, i] = a_t + α[r, t] + b[r, t, s] + v_i + w[r, i] + e[r, t, s, i] — a
    teacher part both share (a) and one each (α), seeds, the inputs' difficulty (cancels in A − B), each model's
    gain on an input (w: what the two share over the seeds and teachers), per-input noise of a run."""
    v = SD_VALUE * rng.standard_normal(inputs)
    w = SD_GAIN * rng.standard_normal((2, 1, 1, inputs))
    y = (SD_TEACHER * rng.standard_normal((1, teachers, 1, 1)) + SD_SHIFT * rng.standard_normal((2, teachers, 1, 1))
         + SD_SEED * rng.standard_normal((2, teachers, seeds, 1)) + v + w
         + SD_SAMPLE * rng.standard_normal((2, teachers, seeds, inputs)))
    counts = np.stack([np.bincount(d, minlength=inputs) for d in rng.integers(inputs, size=(draws, inputs))])
    boot = np.einsum("bi,rtsi->rtsb", counts.astype(float), y) / inputs
    scores = [[[[x] for x in teacher] for teacher in model] for model in y.mean(axis=3)]
    resampled = [[[run[:, None] for run in teacher] for teacher in model] for model in boot]
    return scores, resampled, w[0, 0, 0] - w[1, 0, 0], inputs


def test_a_comparison_s_parts_the_shared_teacher_and_the_inputs_difficulty_cancel():
    from harness.reporting.variance import contrast, half_width, seeds_needed

    scores, resampled, gain, m = simulate_pair(np.random.default_rng(13))
    c = contrast(scores[0], scores[1], resampled[0], resampled[1])
    assert c.teacher == pytest.approx(2 * SD_SHIFT ** 2, rel=0.3)                     # α_A − α_B; a cancels
    assert c.seed == pytest.approx(2 * (SD_SEED ** 2 + SD_SAMPLE ** 2 / m), rel=0.2)
    assert c.input_shared == pytest.approx(gain.var() / m, rel=0.25)                 # w_A − w_B; v cancels
    # one teacher: its part left out; three: in, with t at 2 degrees of freedom — wider, and never below the floor
    assert half_width(c, 1, 10) < half_width(c, 3, 10)
    assert seeds_needed(c, 1, 2.0) == next(n for n in range(2, 101) if half_width(c, 1, n) <= 2.0)
    assert seeds_needed(c, 3, 0.5) is None   # 4.3 × √(teacher/3) alone is above 0.5


def test_the_shared_input_part_leaves_out_each_teacher_s_own_interaction_with_the_inputs():
    """y[t, s, i] = a_t + b_ts + v_i + u_ti + e_tsi: u (a teacher's own gain on an input, shared by its runs) is in
    the teacher part on the fixed test set; the part every run shares is v's alone. Taking the runs of three teachers
    for exchangeable replicates left u²(n − 1)/(K n − 1) of it in (here +4/m on 9/m)."""
    rng = np.random.default_rng(0)
    teachers, seeds, inputs, draws, sd_own = 3, 3, 1000, 2000, 4.0
    v = SD_VALUE * rng.standard_normal(inputs)
    y = (SD_TEACHER * rng.standard_normal((teachers, 1, 1)) + SD_SEED * rng.standard_normal((teachers, seeds, 1)) + v
         + sd_own * rng.standard_normal((teachers, 1, inputs)) + SD_SAMPLE * rng.standard_normal((teachers, seeds, inputs)))
    counts = np.stack([np.bincount(d, minlength=inputs) for d in rng.integers(inputs, size=(draws, inputs))])
    boot = np.einsum("bi,tsi->tsb", counts.astype(float), y) / inputs
    c = estimate([[[x] for x in teacher] for teacher in y.mean(axis=2)],
                 [[run[:, None] for run in teacher] for teacher in boot], inputs)
    assert c.input_shared == pytest.approx(v.var() / inputs, rel=0.1)


def test_at_one_teacher_the_input_part_holds_that_teacher_s_own_interaction_with_the_inputs():
    """A − B with a part of each teacher's own on each input (sd 2, per model): at one teacher it is input noise of
    the verdict (about 2·4/m on top of the shared part); over teachers it is in the teacher part. The half-width
    at one teacher took the shared part alone: too narrow."""
    from harness.reporting.variance import contrast, half_width

    rng = np.random.default_rng(21)
    teachers, seeds, inputs, draws, sd_own = 40, 3, 50, 400, 2.0
    w = SD_GAIN * rng.standard_normal((2, 1, 1, inputs))
    y = (SD_SEED * rng.standard_normal((2, teachers, seeds, 1)) + w
         + sd_own * rng.standard_normal((2, teachers, 1, inputs)) + SD_SAMPLE * rng.standard_normal((2, teachers, seeds, inputs)))
    counts = np.stack([np.bincount(d, minlength=inputs) for d in rng.integers(inputs, size=(draws, inputs))])
    boot = np.einsum("bi,rtsi->rtsb", counts.astype(float), y) / inputs
    scores = [[[[x] for x in teacher] for teacher in model] for model in y.mean(axis=3)]
    resampled = [[[run[:, None] for run in teacher] for teacher in model] for model in boot]
    c = contrast(scores[0], scores[1], resampled[0], resampled[1])
    gain = (w[0, 0, 0] - w[1, 0, 0]).var() / inputs
    assert c.input_shared == pytest.approx(gain, rel=0.3)
    assert c.input_teacher == pytest.approx(gain + 2 * sd_own ** 2 / inputs, rel=0.2)
    t = float(stats.t.ppf(0.975, 2 * (5 - 1)))
    assert half_width(c, 1, 5) == pytest.approx(t * math.sqrt(c.seed / 5 + c.input_teacher))

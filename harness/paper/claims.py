"""The claims of the paper's §4 that ``harness report`` re-tests, as data: what each says and what it names.

:mod:`harness.reporting.findings` holds the statistics (one function per claim); this module holds what the
paper asserts — the models, tasks, orders and margins — so that a claim's words and its parameters live in one
place, beside the paper's other facts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    number: str      # as the report numbers it ("1", "3a", …)
    text: str        # what the paper claims, in one sentence


PREDISTILL_VS_MLE = Claim("1", "Pre-distillation is at least as good as MLE on each task (the task's primary metric).")
KD_VS_MLE = Claim("2", "Every KD method of the paper is at least as good as MLE on each task.")
TEACHER_DIST_RISES = Claim("3a", "The teacher's TeacherDist rises WMT < DART < XSum < dialogue.")
DIALOGUE_TEACHER_LEAD = Claim("3b", "The dialogue teacher is at least 3 BLEU-1 above the MLE student.")
KL_COVERAGE = Claim("4", "KL has a lower coverage risk R_cvg than RKL on each task.")
SYMMETRIC_NEAR_BEST = Claim("5", "JS and TVD are as good as the best KD method: within ±1 point of its primary "
                                 "metric (an equivalence test, two one-sided tests).")
KD_ORDER = Claim("6a", "Our order of the KD methods agrees with the paper's (Kendall τ > 0, primary metric).")
DEPTH_TREND = Claim("6b", "Figure 2: the primary metric rises with the student's encoder depth, for each method.")
AHEAD_OF_SEQKD = Claim("6c", "Figure 2: every f-DISTILL method is ahead of SeqKD at every encoder depth.")

CLAIMS = (PREDISTILL_VS_MLE, KD_VS_MLE, TEACHER_DIST_RISES, DIALOGUE_TEACHER_LEAD, KL_COVERAGE, SYMMETRIC_NEAR_BEST,
          KD_ORDER, DEPTH_TREND, AHEAD_OF_SEQKD)

# --------------------------------------------------------------------------- what the claims name
#: 3a: the tasks in the order of their teacher's TeacherDist, lowest first (Table 3: 23.13 < 26.10 < 36.28 < 81.19).
TEACHER_DIST_ORDER = ("wmt16_en_ro", "dart", "xsum", "commonsense_dialogue")
#: 3b: the task, the metric and the teacher's lead over the MLE student.
DIALOGUE_TASK, DIALOGUE_METRIC, DIALOGUE_MARGIN = "commonsense_dialogue", "bleu1", 3.0
#: 4: the method with the lower coverage risk, and the one it is compared with.
LOWER_COVERAGE_RISK, HIGHER_COVERAGE_RISK = "kl", "rkl"
#: 5: the symmetric losses said to be best or near-best.
NEAR_BEST = ("js", "tvd")
#: 5: "as good as" the best KD method = within this many points of the primary metric (BLEU, ROUGE-L, BLEU-1 on
#: 0–100). The paper's own spread of its four f-divergences on the primary metric (Table 2: DART BLEU 45.63–46.95,
#: WMT BLEU 20.46–21.91, dialogue BLEU-1 9.81–11.55, XSum ROUGE-L 33.71–34.10) is 1.3–1.7 points on three tasks
#: (0.4 on XSum): one point is less than the gap between the paper's best and worst f-divergence there, so "within
#: one point" separates near-best from the rest, and more than the paper's gaps it calls near-best (JS, TVD within
#: 0.1–0.2 of each other).
NEAR_BEST_MARGIN = 1.0
#: 6b, 6c: Figure 2's axis, the f-DISTILL methods and the baseline they are ahead of.
DEPTH_AXIS = "student.encoder_layers"
F_DISTILL = ("kl", "rkl", "js", "tvd")
SEQKD = "seqkd"

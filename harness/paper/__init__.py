"""What the paper (Wen et al., ACL 2023) fixes, in one place; nothing here imports the rest of the harness.

* this module: its task and method orders, the metric labels of its tables, the columns it computes its own way;
* :mod:`.data`: the size of each task's data (cost estimates);
* :mod:`.published`: its published numbers (``results.csv``);
* :mod:`.claims`: the claims of its §4 that ``harness report`` re-tests, as data.

Nothing here decides what runs; grids, reports and benches use these orders only to lay
out rows and columns the way the paper does, and put anything else after them.
"""

from __future__ import annotations

#: The columns of the paper's Table 2, in its order.
TASKS = ("dart", "xsum", "wmt16_en_ro", "commonsense_dialogue")
#: The students of the paper's Table 2 (the teacher is its first row).
METHODS = ("mle", "predistill", "seqkd", "engine", "kl", "rkl", "js", "tvd")
#: The KD methods whose order the paper's Table 2 ranks (Kendall τ against it).
KD_METHODS = ("seqkd", "engine", "kl", "rkl", "js", "tvd")
#: Row order of every model table: the teacher, then the paper's students.
MODELS = ("teacher", *METHODS)
#: The paper's Table 4: methods timed with offline against online teacher prefixes.
TABLE4_METHODS = ("js", "tvd")

#: How reports name metrics (an arrow marks lower-is-better where the direction is known).
LABELS = {"bleu": "BLEU", "chrf": "chrF", "ter": "TER", "r_llh": "R_llh", "r_cvg": "R_cvg",
          "rouge1": "R1", "rouge2": "R2", "rougeL": "RL", "bleu1": "BLEU-1", "bleu2": "BLEU-2",
          "teacher_dist": "TeacherDist", "bleu_official": "BLEU (official)", "bleu1_nlgeval": "BLEU-1 (nlg-eval)",
          "bleu2_nlgeval": "BLEU-2 (nlg-eval)", "r_llh_paper": "R_llh (paper)", "r_cvg_paper": "R_cvg (paper)",
          "teacher_dist_paper": "TeacherDist (paper)", "tvd_token": "token TVD", "acceptance": "acceptance α",
          "exact_match": "EM", "meteor": "METEOR", "bertscore": "BERTScore", "moverscore": "MoverScore",
          "bleurt": "BLEURT", "speedup": "speed-up"}


#: The paper's columns that every task computes the paper's way beside its own (its name → ours); a task adds
#: its own (``Task.paper_metrics``, e.g. DART's ``bleu`` → ``bleu_official``), recorded in each run's manifest.
PAPER_METRICS = {"r_llh": "r_llh_paper", "r_cvg": "r_cvg_paper", "teacher_dist": "teacher_dist_paper"}


def order_key(name: str, order: tuple[str, ...]) -> tuple[int, str]:
    """Sort key: names of ``order`` first, in its order; the rest after, alphabetically."""
    return (order.index(name), "") if name in order else (len(order), name)

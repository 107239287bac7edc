"""What the paper fixes, in one place: its task and method orders and the metric labels of
its tables. Its published numbers are ``reporting/paper_results.csv`` (read by
:mod:`harness.reporting.paper`).

Nothing here decides what runs; grids, reports and benches use these orders only to lay
out rows and columns the way the paper does, and put anything else after them.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class DataStats:
    """The size of a task's paper data, for cost estimates (``harness grid --dry-run``)."""

    train_rows: int        # training examples: one per (input, reference) pair
    train_inputs: int      # distinct training inputs (pseudo-labels; KD rows one per input)
    validation: int        # validation inputs decoded at each check
    test: int              # test inputs decoded
    source_tokens: float   # mean subword tokens of an input: an assumption, see each task
    target_tokens: float   # mean subword tokens of a target: an assumption, see each task


#: The paper's data, task by task. Counts: PAPER.md §3 and the release files; mean lengths are
#: assumptions (word-and-punctuation counts × about 1.15 subwords, or the data set papers' word counts).
PAPER_DATA = {
    # 62,659 (tripleset, annotation) pairs over 30,526 training triplesets (the hub train split; PAPER.md §3);
    # dev 2,768 triplesets (shared/data/dart README); test 4,159 triplesets: the paper profile merges the release's
    # 5,097 entries (data.merge_test_inputs; docs/paper-recipe.md, "5,097 or 4,159").
    # Lengths: the dev file's linearised triples 30.6 and annotations 24.3 words and punctuation marks.
    "dart": DataStats(62_659, 30_526, 2_768, 4_159, source_tokens=36, target_tokens=28),
    # 204,045 / 11,332 / 11,334 (PAPER.md §3). Lengths: XSum documents 431 and summaries 23.3 words
    # (Narayan et al. 2018, Table 1), × 1.3 BPE tokens per word (sources stay under the 1,024 cut).
    "xsum": DataStats(204_045, 204_045, 11_332, 11_334, source_tokens=560, target_tokens=30),
    # The paper's 100k training pairs, newsdev2016 / newstest2016 1,999 each (PAPER.md §3). Lengths: news
    # sentences of about 27 words; T5's prefix adds 7 tokens; Romanian splits into more pieces than English.
    "wmt16_en_ro": DataStats(100_000, 100_000, 1_999, 1_999, source_tokens=42, target_tokens=45),
    # (context, response) pairs 51,831 / 6,619 / 6,610, every turn a response (PAPER.md §3;
    # tasks/commonsense_dialogue/records.py). Lengths: valid.json's contexts 56.6 and turns 12.7 words
    # and punctuation marks, plus one end-of-turn token per turn.
    "commonsense_dialogue": DataStats(51_831, 51_831, 6_619, 6_610, source_tokens=68, target_tokens=16),
}

"""The size of each task's paper data, for cost estimates (``harness grid --dry-run``)."""

from __future__ import annotations

from dataclasses import dataclass


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

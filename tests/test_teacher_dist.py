"""TeacherDist (PAPER.md Table 3): distinct-bigram percentage over a teacher's samples per input."""

import pytest

from harness.evaluate import distinct_bigram_percent


def test_identical_samples_have_the_fewest_distinct_bigrams():
    # 5 copies of "a b c": 10 bigrams, 2 distinct → 20 %
    assert distinct_bigram_percent([["a b c"] * 5]) == pytest.approx(20.0)


def test_disjoint_samples_are_all_distinct_and_inputs_are_averaged():
    varied = ["a b", "c d", "e f", "g h", "i j"]      # 5 bigrams, 5 distinct → 100 %
    same = ["x y z"] * 5                            # 10 bigrams, 2 distinct → 20 %
    assert distinct_bigram_percent([varied, same]) == pytest.approx(60.0)


def test_case_is_ignored_and_one_word_samples_have_no_bigrams():
    assert distinct_bigram_percent([["The cat", "the CAT"]]) == pytest.approx(50.0)
    assert distinct_bigram_percent([["word"] * 5]) == 0.0

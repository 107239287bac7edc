"""TeacherDist (PAPER.md Table 3): distinct-bigram percentage over a teacher's samples per input, over words
(``teacher_dist``) and over the tokenizer's pieces as the paper counts them (``teacher_dist_paper``)."""

import pytest

from harness.evaluate import distinct_bigram_percent, subwords, words
from harness.metrics import cut_after_last_sentence_end


def word_dist(samples: list[list[str]]) -> float:
    return distinct_bigram_percent(words(samples))


def test_identical_samples_have_the_fewest_distinct_bigrams():
    # 5 copies of "a b c": 10 bigrams, 2 distinct → 20 %
    assert word_dist([["a b c"] * 5]) == pytest.approx(20.0)


def test_disjoint_samples_are_all_distinct_and_inputs_are_averaged():
    varied = ["a b", "c d", "e f", "g h", "i j"]      # 5 bigrams, 5 distinct → 100 %
    same = ["x y z"] * 5                            # 10 bigrams, 2 distinct → 20 %
    assert word_dist([varied, same]) == pytest.approx(60.0)


def test_case_is_ignored_and_one_word_samples_have_no_bigrams():
    assert word_dist([["The cat", "the CAT"]]) == pytest.approx(50.0)
    assert word_dist([["word"] * 5]) == 0.0


class PluralPieces:
    """A tokenizer whose pieces split a plural ``s`` off its word: "the cats" → the, cat, ##s."""

    def tokenize(self, text: str) -> list[str]:
        return [piece for word in text.split()
                for piece in ([word[:-1], "##s"] if word.endswith("s") else [word])]


def test_subword_bigrams_by_hand():
    samples = [["the cat", "the cats"]]
    # pieces: (the, cat) | (the, cat), (cat, ##s): 3 bigrams, 2 distinct → 66.67 %
    assert distinct_bigram_percent(subwords(samples, PluralPieces())) == pytest.approx(200 / 3)
    # words: (the, cat) | (the, cats): 2 bigrams, 2 distinct → 100 %
    assert word_dist(samples) == pytest.approx(100.0)


def test_the_papers_count_scores_an_input_without_bigrams_as_zero():
    samples = words([["alone"], ["x y", "x y"]])     # no bigram | 2 bigrams, 1 distinct → 50 %
    assert distinct_bigram_percent(samples) == pytest.approx(50.0)                     # left out
    assert distinct_bigram_percent(samples, count_empty=True) == pytest.approx(25.0)   # (0 + 50) / 2


@pytest.mark.parametrize("text, cut", [
    (" Hi there. How are  you? I am", "Hi there. How are you?"),   # ends at the last .!?, whitespace collapsed
    ("One. Two. Three. Four", "One. Two. Three."),                  # no two-sentence limit
    (".Oh. ok", ".Oh."),                                            # a leading . stays
    ("no  end", "no  end"),                                         # without .!? untouched
])
def test_the_dialogue_teacher_dist_cut(text, cut):
    assert cut_after_last_sentence_end(text) == cut


def _oracle_teacher_dist(task: str, n: int = 200, seed: int = 0) -> float:
    """TeacherDist of a twin's own output distribution: 5 draws per test input from the
    generator itself (a perfect teacher), scored by the harness's statistic."""
    import random

    rng = random.Random(seed)
    if task == "wmt16_en_ro":
        from harness_tasks.wmt16_en_ro import twin
        lex = twin.build_lexicon(seed)
        draws = [[twin.translate(s, lex, rng) for _ in range(5)] for s in twin.sample_inputs("test", n, seed)]
    elif task == "dart":
        from harness_tasks.dart import twin
        world = twin._build_world(seed)
        draws = [[twin._realise(r["tripleset"], world, rng) for _ in range(5)]
                 for r in twin.generate_split("test", n, seed)]
    elif task == "xsum":
        from harness_tasks.xsum import twin
        draws = [[twin.sample_summary(e, rng) for _ in range(5)] for e in twin.sample_events("test", n, seed)]
    else:
        from harness_tasks.commonsense_dialogue import twin
        draws = []
        for d in twin.generate_dialogues("test", n, seed):
            turn = rng.randrange(len(d.turns))     # any turn of the dialogue, as the test pairs are
            draws.append(twin.continuations(d.scenario, turn, 5, seed=rng.randrange(10**6))[1])
    return word_dist(draws)


def test_the_twins_output_distributions_have_the_papers_teacher_dist_order():
    """PAPER Table 3: WMT 23.1 < DART 26.1 < XSum 36.3 < dialogue 81.2. The twins are built to
    differ the same way; a perfect teacher of each (its generator) shows the order, with margins."""
    order = ["wmt16_en_ro", "dart", "xsum", "commonsense_dialogue"]
    values = {task: _oracle_teacher_dist(task) for task in order}
    for lower, higher in zip(order, order[1:]):
        assert values[lower] + 5 < values[higher], values


@pytest.mark.parametrize("task", ["wmt16_en_ro", "dart", "xsum", "commonsense_dialogue"])
def test_the_cpu_teacher_dist_samples_as_the_reference(task):
    """TeacherDist is reported beside the paper's: the cpu profile draws its samples with the paper profile's
    sampler (the reference's, where it has a TeacherDist script), only the output length its own."""
    from dataclasses import replace

    from harness.config import resolve_config

    cpu = resolve_config(task, "mle", "cpu").teacher_dist_sampling
    paper = resolve_config(task, "mle", "paper").teacher_dist_sampling
    assert replace(cpu, max_new_tokens=paper.max_new_tokens) == paper
    if task == "wmt16_en_ro":     # t5mt/run_calc_dist.py:80-85: sampling beam search, 5 beams, the config's top-k 50
        assert (cpu.num_beams, cpu.do_sample, cpu.top_k) == (5, True, 50)
    if task == "commonsense_dialogue":   # chat/run_calc_dist.py:114-126: ancestral, top-k 50, 3 new tokens at least
        assert (cpu.num_beams, cpu.do_sample, cpu.top_k, cpu.min_new_tokens) == (1, True, 50, 3)

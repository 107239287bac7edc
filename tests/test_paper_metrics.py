"""The paper's own scorers, against brute force and hand-worked values."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from harness.metrics import dart_official_bleu, dart_tokenize, nlgeval_bleu, two_sentence_cut


def multi_bleu(hyps: list[str], refs: list[list[str]]) -> float:
    """multi-bleu.perl written out: clipped n-gram counts against the max over references, closest
    reference length (empty references included, ties to the shorter), no smoothing, log 0 → BLEU 0."""
    correct, total = [0] * 4, [0] * 4
    c = r = 0
    for h, rs in zip(hyps, refs):
        ht, rts = h.split(), [x.split() for x in rs]
        for n in range(1, 5):
            hc = Counter(tuple(ht[i:i + n]) for i in range(len(ht) - n + 1))
            best = Counter()
            for rt in rts:
                for g, k in Counter(tuple(rt[i:i + n]) for i in range(len(rt) - n + 1)).items():
                    best[g] = max(best[g], k)
            correct[n - 1] += sum(min(k, best[g]) for g, k in hc.items())
            total[n - 1] += sum(hc.values())
        c += len(ht)
        r += min((abs(len(rt) - len(ht)), len(rt)) for rt in rts)[1]
    if any(k == 0 for k in correct):
        return 0.0
    bp = math.exp(1 - r / c) if c < r else 1.0
    return 100 * bp * math.exp(sum(math.log(k / t) for k, t in zip(correct, total)) / 4)


def test_dart_tokenize_is_the_official_normalisation():
    assert dart_tokenize("Hawaii Five-O, 1:02:38.") == "hawaii five - o , 1 : 02 : 38 ."
    assert dart_tokenize("  The_Band's  (1999)\n") == "the_band ' s ( 1999 )"


def test_dart_official_bleu_is_multi_bleu_on_the_normalised_text():
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "Park", "runs", "near", "it", ",", "."]
    for trial in range(30):
        hyps, refs = [], []
        for _ in range(rng.randint(3, 12)):
            hyps.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))))
            refs.append([" ".join(rng.choice(words) for _ in range(rng.randint(3, 15)))
                         for _ in range(rng.randint(1, 5))])
        got = dart_official_bleu(hyps, refs).corpus["bleu_official"]
        padded = [[dart_tokenize(r) for r in rs[:3]] + [""] * (3 - len(rs[:3])) for rs in refs]
        assert got == pytest.approx(multi_bleu([dart_tokenize(h) for h in hyps], padded), abs=1e-6), trial


def test_dart_official_bleu_counts_an_empty_reference_line_as_the_closest_length():
    """One annotation → two empty lines: a short hypothesis is compared with length 0, not penalised."""
    hyps, refs = ["a b c d e"], [["a b c d e f g h i j"]]
    assert dart_official_bleu(hyps, refs).corpus["bleu_official"] == pytest.approx(100.0)


@pytest.mark.parametrize("text, cut", [
    ("Oh... ok.", "Oh.."),
    ("Sure! I can. Bye.", "Sure! I can."),
    ("yes i will", "yes i will"),
    (". hello there. how are   you? fine", "hello there. how are you?"),
    ("ok. fine", "ok."),
    ("!", ""),
])
def test_two_sentence_cut(text, cut):
    assert two_sentence_cut(text) == cut


def test_nlgeval_bleu_by_hand():
    """BLEU-1 by hand: 'i am fine .' vs 'i am fine thanks .' → 4/4 matches, c=4 < r=5: BP = e^(1-5/4)."""
    scores = nlgeval_bleu(["i am fine. and you? more"], [["i am fine thanks ."]])
    # the cut leaves "i am fine. and you?" → tokens: i, am, fine., and, you? (whitespace, cased)
    # unigram matches: i, am → 2/5; c = 5 = r → BP 1
    assert scores.corpus["bleu1_nlgeval"] == pytest.approx(100 * 2 / 5, abs=1e-6)
    assert scores.corpus["bleu2_nlgeval"] == pytest.approx(100 * math.sqrt(2 / 5 * 1 / 4), abs=1e-6)
    short = nlgeval_bleu(["i am fine ."], [["i am fine thanks ."]])
    assert short.corpus["bleu1_nlgeval"] == pytest.approx(100 * math.exp(1 - 5 / 4), abs=1e-6)


def test_sacrebleu_scores_equal_sacrebleus_own_corpus_and_sentence_scores():
    """Each sentence's statistics are extracted once; the corpus and sentence scores computed from them must be
    what sacrebleu's corpus_score and sentence_score give, with a varying number of references per input."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    from harness.metrics import sacrebleu_scores

    rng = random.Random(3)
    words = "the a cat dog sat on mat ran fast slow red blue".split()
    sentence = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(0, 9)))  # noqa: E731
    hyps = [sentence() for _ in range(40)]
    refs = [[sentence() or "x" for _ in range(rng.randint(1, 3))] for _ in hyps]
    got = sacrebleu_scores(hyps, refs, metrics=("bleu", "bleu2", "chrf", "ter"))
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(3)]
    for name, corpus_metric, sentence_metric in (
            ("bleu", BLEU(), BLEU(effective_order=True)),
            ("bleu2", BLEU(max_ngram_order=2), BLEU(max_ngram_order=2, effective_order=True)),
            ("chrf", CHRF(), CHRF()), ("ter", TER(), TER())):
        assert got.corpus[name] == corpus_metric.corpus_score(hyps, streams).score
        assert got.per_example[name] == [sentence_metric.sentence_score(h, r).score for h, r in zip(hyps, refs)]
        assert got.signatures[name] == str(corpus_metric.get_signature())

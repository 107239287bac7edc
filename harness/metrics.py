"""Metric wrappers: sacrebleu (BLEU, chrF, TER) with signatures, multi-reference aware."""

from __future__ import annotations

from typing import Sequence

from .task import Scores


def _reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference slot; ``None`` pads inputs with fewer references."""
    width = max((len(r) for r in references), default=1)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]


def sacrebleu_scores(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    metrics: Sequence[str] = ("bleu", "chrf", "ter"),
) -> Scores:
    """Corpus and sentence-level sacrebleu scores with every reference of an input.

    ``bleu1``/``bleu2`` are BLEU with max n-gram order 1 and 2 (the dialogue metrics).
    """
    from sacrebleu.metrics import BLEU, CHRF, TER

    def make(name: str, sentence: bool = False):
        # Sentence-level BLEU needs effective order, or short hypotheses score 0.
        if name.startswith("bleu"):
            order = int(name[4:]) if name != "bleu" else 4
            return BLEU(max_ngram_order=order, effective_order=sentence)
        return {"chrf": CHRF, "ter": TER}[name]()

    streams = _reference_streams(references)
    corpus, signatures, per_example = {}, {}, {}
    for name in metrics:
        metric = make(name)
        corpus[name] = float(metric.corpus_score(list(hypotheses), streams).score)
        signatures[name] = str(metric.get_signature())
        sentence_metric = make(name, sentence=True)
        per_example[name] = [
            float(sentence_metric.sentence_score(h, list(r)).score) for h, r in zip(hypotheses, references)
        ]
    return Scores(corpus=corpus, signatures=signatures, per_example=per_example)

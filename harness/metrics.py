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

    makers = {
        "bleu": lambda: BLEU(),
        "bleu1": lambda: BLEU(max_ngram_order=1),
        "bleu2": lambda: BLEU(max_ngram_order=2),
        "chrf": lambda: CHRF(),
        "ter": lambda: TER(),
    }
    streams = _reference_streams(references)
    corpus, signatures, per_example = {}, {}, {}
    for name in metrics:
        metric = makers[name]()
        corpus[name] = float(metric.corpus_score(list(hypotheses), streams).score)
        signatures[name] = str(metric.get_signature())
        sentence_metric = makers[name]() if name != "bleu" else BLEU(effective_order=True)
        if name.startswith("bleu") and name != "bleu":
            sentence_metric = BLEU(max_ngram_order=int(name[-1]), effective_order=True)
        per_example[name] = [
            float(sentence_metric.sentence_score(h, list(r)).score) for h, r in zip(hypotheses, references)
        ]
    return Scores(corpus=corpus, signatures=signatures, per_example=per_example)

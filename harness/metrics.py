"""Metric wrappers with signatures, multi-reference aware: sacrebleu (BLEU, chrF, TER) and ROUGE."""

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


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge_scores(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    metrics: Sequence[str] = ROUGE_TYPES,
) -> Scores:
    """ROUGE F1 ×100 with ``rouge_score`` and the Porter stemmer (the XSum metrics, PAPER.md §3).

    Per example: the F1 against the best-matching reference (``score_multi``: max over
    references, per ROUGE type). Corpus: the mean of the per-example scores.
    """
    from importlib.metadata import version

    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(metrics), use_stemmer=True)
    per_example: dict[str, list[float]] = {name: [] for name in metrics}
    for hypothesis, refs in zip(hypotheses, references):
        scores = scorer.score_multi(list(refs), hypothesis)
        for name in metrics:
            per_example[name].append(100.0 * float(scores[name].fmeasure))
    corpus = {name: sum(v) / len(v) if v else 0.0 for name, v in per_example.items()}
    base = f"rouge_score:{version('rouge_score')}|stemmer:porter|f1x100|multi-ref:max|corpus:mean"
    signatures = {name: f"{base}|type:{name}" for name in metrics}
    return Scores(corpus=corpus, signatures=signatures, per_example=per_example)

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
        metric._check_corpus_score_args(list(hypotheses), streams)
        # Each sentence's statistics once (TER's edit distances are the slow part): the corpus score is computed
        # from their sum and each sentence's score from its own, as corpus_score and sentence_score would.
        stats = metric._extract_corpus_statistics(list(hypotheses), streams)
        corpus[name] = float(metric._aggregate_and_compute(stats).score)
        signatures[name] = str(metric.get_signature())
        sentence_metric = make(name, sentence=True)
        per_example[name] = [float(sentence_metric._aggregate_and_compute([row]).score) for row in stats]
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


# ---------------------------------------------------------------- the paper's own scorers (comparable numbers)

def dart_tokenize(text: str) -> str:
    """The official DART evaluation's normalisation: every non-word character its own token, lower-cased.

    ``"Hawaii Five-O, 1:02:38."`` → ``"hawaii five - o , 1 : 02 : 38 ."``.
    """
    import re

    return " ".join(" ".join(re.split(r"(\W)", text.strip().replace("\n", ""))).split()).lower()


DART_OFFICIAL_REFERENCES = 3   # the official kit writes the first three annotations, empty lines for missing ones


def dart_official_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Scores:
    """``bleu_official``: DART's official BLEU (its ``multi-bleu.perl`` run on the normalised text).

    The first three references of each input, in release order, a missing one as an empty
    line; no smoothing; the effective reference length is the closest among the three lines,
    empty ones included (ties: the shorter). sacreBLEU with tokenisation off computes exactly
    this on the pre-normalised text.
    """
    from sacrebleu.metrics import BLEU

    hyps, streams = dart_official_inputs(hypotheses, references)
    corpus = dart_official_corpus_bleu()
    sentence = BLEU(tokenize="none", effective_order=True, force=True)
    return Scores(
        corpus={"bleu_official": float(corpus.corpus_score(hyps, streams).score)},
        signatures={"bleu_official": f"{DART_OFFICIAL_SIGNATURE}{corpus.get_signature()}"},
        per_example={"bleu_official": [float(sentence.sentence_score(h, [r for r in refs if r]).score)
                                       for h, refs in zip(hyps, zip(*streams))]},
    )


DART_OFFICIAL_SIGNATURE = "dart-official:re-split-nonword|lc|refs:first-3|"   # then the corpus BLEU's signature


def dart_official_inputs(hypotheses: Sequence[str], references: Sequence[Sequence[str]]
                         ) -> tuple[list[str], list[list[str]]]:
    """(normalised hypotheses, three reference streams, a missing reference an empty line) as the kit scores them."""
    hyps = [dart_tokenize(h) for h in hypotheses]
    refs = [[dart_tokenize(r) for r in list(rs)[:DART_OFFICIAL_REFERENCES]] for rs in references]
    refs = [rs + [""] * (DART_OFFICIAL_REFERENCES - len(rs)) for rs in refs]
    return hyps, [[rs[i] for rs in refs] for i in range(DART_OFFICIAL_REFERENCES)]


def dart_official_corpus_bleu():
    """The sacreBLEU corpus BLEU that computes ``bleu_official`` on :func:`dart_official_inputs`."""
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize="none", smooth_method="none", force=True)


_SENTENCE_END = frozenset(".!?")


def _through_last_end(text: str) -> str:
    """Whitespace collapsed, cut after the last ``.!?`` (the text has one): an unfinished fragment goes."""
    text = " ".join(text.split())
    return text[: max(text.rfind(c) for c in _SENTENCE_END) + 1]


def two_sentence_cut(prediction: str) -> str:
    """The dialogue evaluation's cut of a reply to at most two sentences (the reference code's ``trunc_pred``).

    1. a leading ``.!?`` goes; 2. if any ``.!?`` is left, whitespace is collapsed and the text cut
    after the *last* one (an unfinished fragment goes); 3. the text ends at the *second* ``.!?``
    character. Character-based, as the original: ``"Oh... ok."`` → ``"Oh.."``.
    """
    pred = prediction
    if pred and pred[0] in _SENTENCE_END:
        pred = pred[1:]
    if any(c in _SENTENCE_END for c in pred):
        pred = _through_last_end(pred)
        seen = 0
        for i, c in enumerate(pred):
            if c in _SENTENCE_END:
                seen += 1
                if seen == 2:
                    return pred[: i + 1]
    return pred


def cut_after_last_sentence_end(text: str) -> str:
    """The dialogue TeacherDist script's own cut (``trunc_pred``, ``chat/run_calc_dist.py:39-46``, applied as
    ``trunc_pred(x.lstrip()).lstrip()``): a text with a ``.!?`` has its whitespace collapsed and ends at its
    last one; unlike :func:`two_sentence_cut`, no two-sentence limit and no leading ``.!?`` dropped."""
    text = text.lstrip()
    if any(c in _SENTENCE_END for c in text):
        text = _through_last_end(text)
    return text.lstrip()


def nlgeval_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Scores:
    """``bleu1_nlgeval`` / ``bleu2_nlgeval``: dialogue BLEU as the paper computed it.

    Each reply is cut to at most two sentences (:func:`two_sentence_cut`), then scored with
    the COCO caption BLEU that nlg-eval runs (``pycocoevalcap``: whitespace tokens, cased,
    closest reference length, corpus level).
    """
    from importlib.metadata import version

    from pycocoevalcap.bleu.bleu import Bleu

    hyps = {i: [two_sentence_cut(h.lstrip()).lstrip()] for i, h in enumerate(hypotheses)}
    refs = {i: [r.strip() for r in rs] for i, rs in enumerate(references)}
    corpus, per_sentence = Bleu(2).compute_score(refs, hyps, verbose=0)
    signature = f"pycocoevalcap:{version('pycocoevalcap')}|nlg-eval|two-sentence-cut|whitespace|cased"
    names = ("bleu1_nlgeval", "bleu2_nlgeval")
    return Scores(corpus={n: 100.0 * float(corpus[i]) for i, n in enumerate(names)},
                  signatures={n: f"{signature}|n:{i + 1}" for i, n in enumerate(names)},
                  per_example={n: [100.0 * float(s) for s in per_sentence[i]] for i, n in enumerate(names)})


def merge_scores(*parts: Scores) -> Scores:
    """One :class:`Scores` from several scorers' (their metric names must differ)."""
    out = Scores(corpus={}, signatures={}, per_example={})
    for part in parts:
        out.corpus.update(part.corpus)
        out.signatures.update(part.signatures)
        out.per_example.update(part.per_example)
    return out


def normalize_answer(text: str) -> str:
    """Lower-cased, whitespace collapsed (what ``exact_match`` compares)."""
    return " ".join(text.lower().split())


def exact_match_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Scores:
    """``exact_match``: 100 if a hypothesis equals any of its references after :func:`normalize_answer`, else 0;
    the corpus score is the mean."""
    per = [100.0 * any(normalize_answer(h) == normalize_answer(r) for r in refs)
           for h, refs in zip(hypotheses, references)]
    return Scores(corpus={"exact_match": sum(per) / len(per) if per else 0.0},
                  signatures={"exact_match": "exact-match|lowercase|whitespace-collapsed|any-reference"},
                  per_example={"exact_match": per})

"""How far an order of rows can be trusted, and the per-input parts the noise model resamples.

:func:`replicates` gives each row as :class:`~harness.reporting.noise.Replicates`: its seeds' stored scores and
the same scores recomputed on shared bootstrap draws of the test inputs (one draw for every row and seed). Marks,
rank intervals, Kendall τ's interval and the findings' intervals all come from them through
:mod:`~harness.reporting.noise` (:func:`model_resamples`: draws of every row's mean for ranks and τ, for rows
with at least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds only).

The two-level bootstrap below (:func:`resample`, :func:`resampled_rows`) is kept for reference only: it has no
distinct seed draws at n = 1 and ten at n = 3, so its rank intervals are too narrow; no table uses it.

Each resample draws the task's seeds with replacement, then its test inputs with replacement (one draw for
every row: all rows are scored on the same inputs), and recomputes each row's score as Table 2 does — the
mean over the row's replicates of the drawn seeds of the corpus-level metric on the drawn inputs (a row with
none of the drawn seeds, such as the shared teacher, keeps all its replicates). A metric is recomputed
from per-example parts where the store's examples reproduce every replicate's stored value: sacreBLEU
metrics (DART's official BLEU among them) from their sufficient statistics (as
:func:`~harness.reporting.stats.paired_p_value` does), any other metric whose corpus score is the mean of its
per-example scores (ROUGE; nlg-eval's BLEU is not) as that mean. The resampled scores give each row's rank
distribution (:func:`rank_stability`; ranks as :mod:`~harness.reporting.ranking` orders rows) and the
interval of any statistic of the rows, such as Kendall τ against the paper's order.

:func:`paired_differences` is the one-level, paired variant: two runs (per seed) recomputed on the same
draws of test inputs, for the interval of their difference (the teacher-output store's table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..metrics import DART_OFFICIAL_SIGNATURE, dart_official_corpus_bleu, dart_official_inputs
from ..store.labels import TEACHER
from .load import Store
from .noise import MIN_OWN_SEEDS, Replicates, score_draws
from .ranking import ranks
from .stats import bootstrap_seed, reference_streams, sacrebleu_metric

TOLERANCE = 1e-9   # a decomposed score must reproduce the stored one to this relative precision (rounding only)


@dataclass
class Resamples:
    """Each row's score in every resample (``scores[sample, row]``), rows in ``labels`` order."""

    labels: list[str]
    scores: np.ndarray
    lower_is_better: bool

    def of(self, labels: list[str]) -> np.ndarray:
        """``scores`` restricted to ``labels``, in their order."""
        return self.scores[:, [self.labels.index(label) for label in labels]]


@dataclass
class Decomposed:
    """One replicate's metric as per-input parts: ``parts[i]`` sums (over drawn inputs) to what ``corpus`` scores."""

    parts: np.ndarray               # [inputs, d]
    corpus: object                  # summed parts [d], number of inputs → score

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """The score under each row of ``counts`` (how often each input was drawn)."""
        totals, n = counts @ self.parts, counts.sum(1)
        return np.array([self.corpus(total, size) for total, size in zip(totals, n)])


def decompose(frame: pd.DataFrame, metric: str, signature: str, stored: float) -> Decomposed | None:
    """``metric`` of one replicate's examples as per-input parts, or None if they do not reproduce ``stored``."""
    obj = sacrebleu_metric(metric, signature)
    hypotheses, references = list(frame["hypothesis"]), [list(r) for r in frame["references"]]
    if obj is not None:
        streams = reference_streams(references)
    elif signature.startswith(DART_OFFICIAL_SIGNATURE):
        obj = dart_official_corpus_bleu()
        hypotheses, streams = dart_official_inputs(hypotheses, references)
    if obj is not None:
        parts = np.asarray(obj._extract_corpus_statistics(hypotheses, streams), dtype=float)
        decomposed = Decomposed(parts, lambda total, _: obj._compute_score_from_stats(list(total)).score)
    elif f"score_{metric}" in frame:
        decomposed = Decomposed(frame[[f"score_{metric}"]].to_numpy(float), lambda total, n: total[0] / n)
    else:
        return None
    everything = np.ones((1, len(frame)))
    value = float(decomposed.resampled(everything)[0])
    return decomposed if abs(value - stored) <= TOLERANCE * abs(stored) + 1e-12 else None


def resample(rows: dict[str, list[tuple[tuple[int, ...], Decomposed]]], lower_is_better: bool,
             n_samples: int, seed) -> Resamples:
    """Two-level bootstrap of rows given as label → [(seeds of a replicate, its decomposed metric)], all on the
    same inputs: seeds first (from every seed a row names), then inputs, shared by all rows."""
    rng = np.random.default_rng(seed)
    seeds = sorted({s for replicates in rows.values() for seeds_of, _ in replicates for s in seeds_of})
    n_inputs = len(next(iter(rows.values()))[0][1].parts)
    seed_draws = rng.integers(len(seeds), size=(n_samples, len(seeds)))
    counts = input_counts(n_inputs, n_samples, rng)
    drawn = np.stack([np.bincount(draw, minlength=len(seeds)) for draw in seed_draws])   # [samples, seeds]
    columns = []
    for replicates in rows.values():
        scores = np.stack([d.resampled(counts) for _, d in replicates], axis=1)            # [samples, replicates]
        weight = np.stack([drawn[:, [seeds.index(s) for s in seeds_of]].sum(1) for seeds_of, _ in replicates],
                          axis=1).astype(float)
        weight[weight.sum(1) == 0] = 1.0          # none of the drawn seeds: all of the row's replicates
        columns.append((weight * scores).sum(1) / weight.sum(1))
    return Resamples(list(rows), np.stack(columns, axis=1), lower_is_better)


def input_counts(n_inputs: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n_inputs`` test inputs is drawn in each of ``n_samples`` resamples (with replacement)."""
    draws = rng.integers(n_inputs, size=(n_samples, n_inputs))
    return np.stack([np.bincount(draw, minlength=n_inputs) for draw in draws]).astype(float)


def paired_differences(pairs: list[tuple[Decomposed, Decomposed]], n_samples: int, seed: int | None) -> np.ndarray:
    """A paired bootstrap over test inputs: per resample, the mean over ``pairs`` (system, baseline: one per seed,
    all on the same inputs) of system − baseline, both sides' corpus metric recomputed on one draw of input
    indices (the same draw for every pair)."""
    n_inputs = len(pairs[0][0].parts)
    if any(len(d.parts) != n_inputs for pair in pairs for d in pair):
        raise ValueError("paired differences need every run scored on the same inputs")
    counts = input_counts(n_inputs, n_samples, np.random.default_rng(seed))
    return np.mean([system.resampled(counts) - baseline.resampled(counts) for system, baseline in pairs], axis=0)


@dataclass(frozen=True)
class RankStability:
    rank: int          # the observed rank (the means Table 2 shows)
    low: float         # 2.5th percentile of the resampled rank
    high: float        # 97.5th percentile
    kept: float        # share of resamples in which the row has its observed rank


def rank_stability(observed: np.ndarray, resamples: Resamples) -> dict[str, RankStability]:
    """Per row: its observed rank, the 95% interval of its resampled rank and the share of resamples keeping it."""
    own = ranks(np.asarray(observed, float), resamples.lower_is_better)
    drawn = ranks(resamples.scores, resamples.lower_is_better)
    low, high = np.quantile(drawn, [0.025, 0.975], axis=0, method="inverted_cdf")   # ranks that occurred
    kept = (drawn == own).mean(0)
    return {label: RankStability(int(own[i]), float(low[i]), float(high[i]), float(kept[i]))
            for i, label in enumerate(resamples.labels)}


def interval(values: np.ndarray) -> tuple[float, float]:
    """The 2.5–97.5 percentile interval of resampled values (undefined ones left out; NaN if none is defined)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def resampled_rows(store: Store, lines: dict[str, dict], lower_is_better: bool, n_samples: int,
                   stream: int = 0) -> Resamples | None:
    """The two-level bootstrap of the rows ``lines`` (label → summary line of one metric), or None when a row's
    examples cannot reproduce its stored values or the rows were not scored on the same inputs. Seeded
    (:func:`~harness.reporting.stats.bootstrap_seed`) and kept on the store, so every table reads the same draws;
    ``stream``: another, independent stream of draws from the same seed (for rows on unrelated data)."""
    if len(lines) < 2:
        return None
    first = next(iter(lines.values()))
    key = (first["task"], first["profile"], first["metric"], tuple(lines), lower_is_better, n_samples, stream)
    if key not in store.bootstraps:
        seed = bootstrap_seed()
        if stream:
            seed = np.random.SeedSequence(seed).spawn(stream + 1)[stream] if seed is not None else None
        store.bootstraps[key] = _resampled_rows(store, lines, lower_is_better, n_samples, seed)
    return store.bootstraps[key]


def _resampled_rows(store: Store, lines: dict[str, dict], lower_is_better: bool, n_samples: int,
                    seed) -> Resamples | None:
    frames = {}
    for label, line in lines.items():
        for replicate in line["replicates"]:
            if not (store.root / "runs" / replicate.run_id / "examples.parquet").is_file():
                return None
            frames[(label, replicate.stage_key)] = store.examples(replicate.run_id, line["model"])
    ids = [tuple(frame["example_id"]) for frame in frames.values()]
    if not ids[0] or any(i != ids[0] for i in ids):
        return None
    rows = {}
    for label, line in lines.items():
        rows[label] = []
        for replicate, stored in zip(line["replicates"], line["values"]):
            decomposed = decompose(frames[(label, replicate.stage_key)], line["metric"], line["signature"], stored)
            if decomposed is None:
                return None
            rows[label].append((replicate.seeds, decomposed))
    return resample(rows, lower_is_better, n_samples, seed)


# --------------------------------------------------------------------------- the noise model's inputs
def replicates(store: Store, lines: dict[str, dict], n_samples: int, stream: int = 0) -> dict[str, Replicates]:
    """Each row of ``lines`` (label → summary line of one metric, all on the same test inputs) as its seeds'
    stored values and, where every row's examples reproduce them (:func:`decompose`), the values recomputed on
    ``n_samples`` bootstrap draws of the test inputs shared by every row and seed (``resampled[draw, seed]``);
    without that, values only (the input part of a comparison is then left out and no mark is given). The
    teacher evaluated once is :attr:`~harness.reporting.noise.Replicates.fixed`. Seeded and kept on the store."""
    first = next(iter(lines.values()))
    key = ("replicates", first["task"], first["profile"], first["metric"], tuple(lines), n_samples, stream)
    if key not in store.bootstraps:
        seed = bootstrap_seed()
        if stream and seed is not None:
            seed = np.random.SeedSequence(seed).spawn(stream + 1)[stream]
        store.bootstraps[key] = _replicates(store, lines, n_samples, seed)
    return store.bootstraps[key]


def _fixed(line: dict) -> bool:
    """The teacher evaluated once: one model shared by every seed of the students it is compared with."""
    return line["model"] == TEACHER and line["n"] == 1


def _replicates(store: Store, lines: dict[str, dict], n_samples: int, seed) -> dict[str, Replicates]:
    plain = {label: Replicates.of(line["values"], fixed=_fixed(line)) for label, line in lines.items()}
    decomposed: dict[str, list[Decomposed]] = {}
    n_inputs = None
    for label, line in lines.items():
        parts = []
        for replicate, stored in zip(line["replicates"], line["values"]):
            if not (store.root / "runs" / replicate.run_id / "examples.parquet").is_file():
                return plain
            frame = store.examples(replicate.run_id, line["model"])
            ids = tuple(frame["example_id"])
            if not ids or (n_inputs is not None and ids != n_inputs):
                return plain
            n_inputs = ids
            d = decompose(frame, line["metric"], line["signature"], stored)
            if d is None:
                return plain
            parts.append(d)
        decomposed[label] = parts
    counts = input_counts(len(n_inputs), n_samples, np.random.default_rng(seed))
    return {label: Replicates.of(lines[label]["values"], np.stack([d.resampled(counts) for d in parts], axis=1),
                                 fixed=_fixed(lines[label]))
            for label, parts in decomposed.items()}


def model_resamples(rows: dict[str, Replicates], lower_is_better: bool, n_draws: int,
                    stream: int = 0) -> Resamples | None:
    """Draws of each row's mean from the noise model (:func:`~harness.reporting.noise.score_draws`: seed part and
    input part together) as :class:`Resamples`, for rank intervals and τ's interval; None unless every row has at
    least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds (fewer: exploratory, no interval) and there are two.
    Rows without bootstrap draws are drawn from their seed part alone, and only when none has draws (all rows
    must share one draw of inputs). ``stream``: an independent stream of seed draws (for rows on unrelated data)."""
    if len(rows) < 2 or any(r.n < MIN_OWN_SEEDS for r in rows.values()):
        return None
    if len({r.resampled is None for r in rows.values()}) > 1:
        rows = {label: Replicates.of(r.values, fixed=r.fixed) for label, r in rows.items()}
    seed = bootstrap_seed()
    if stream and seed is not None:
        seed = np.random.SeedSequence(seed).spawn(stream + 1)[stream]
    return Resamples(list(rows), score_draws(rows, n_draws, seed), lower_is_better)

"""How far an order of rows can be trusted, and the per-input parts the noise model resamples.

:func:`replicates` gives each row as :class:`~harness.reporting.noise.Replicates`: its seeds' stored scores and
the same scores recomputed on bootstrap draws of the test inputs (with replacement; one draw shared by every
row and seed: all rows are scored on the same inputs). A metric is recomputed from per-example parts
(:func:`decompose`) where the store's examples reproduce every replicate's stored value: sacreBLEU metrics
(DART's official BLEU among them) from their sufficient statistics (as
:func:`~harness.reporting.stats.paired_p_value` does), any other metric whose corpus score is the mean of its
per-example scores (ROUGE; nlg-eval's BLEU is not) as that mean. Marks, rank intervals, Kendall τ's interval and
the findings' intervals all come from these replicates through :mod:`~harness.reporting.noise`
(seed variance and test-input variance together); :func:`model_resamples` draws every row's mean from that model,
for rows with at least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds only, and the draws give each row's
rank set (:func:`rank_sets`; ranks as :mod:`~harness.reporting.ranking` orders rows) and the pairs of rows
whose order they settle simultaneously (:func:`sure_signs`), which bound Kendall τ against another order
(:func:`tau_bounds`). (They replace a two-level
bootstrap over seeds, then inputs, which had no distinct seed draws at n = 1 and ten at n = 3: its rank intervals
were too narrow.)

:func:`paired_differences` is a one-level, paired bootstrap: two runs (per seed) recomputed on the same
draws of test inputs, for the interval of their difference (the teacher-output store's table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..metrics import DART_OFFICIAL_SIGNATURE, dart_official_corpus_bleu, dart_official_inputs
from ..store.labels import TEACHER, evaluation_label
from .load import Store
from .noise import MIN_OWN_SEEDS, Replicates, score_draws
from .ranking import pair_signs, ranks
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
        # the mean of the per-input terms that are there (NaN: an input the metric leaves out, as TeacherDist
        # leaves out an input without a bigram): a ratio of two sums, each input's parts (term, 1) or (0, 0)
        terms = frame[f"score_{metric}"].to_numpy(float)
        there = np.isfinite(terms)
        parts = np.stack([np.where(there, terms, 0.0), there.astype(float)], axis=1)
        decomposed = Decomposed(parts, lambda total, n: total[0] / total[1] if total[1] else np.nan)
    else:
        return None
    everything = np.ones((1, len(frame)))
    value = float(decomposed.resampled(everything)[0])
    return decomposed if abs(value - stored) <= TOLERANCE * abs(stored) + 1e-12 else None


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
    rank: int            # the observed rank (the means Table 2 shows)
    low: int | None      # the rank set's best rank: 1 + the rows settled above (:func:`rank_sets`; None: no set)
    high: int | None     # its worst rank: the number of rows − the rows settled below
    kept: float          # share of draws in which the row has its observed rank (descriptive: not an interval)


def rank_stability(observed: np.ndarray, resamples: Resamples, alpha: float = 0.05) -> dict[str, RankStability]:
    """Per row: its observed rank, its 1 − ``alpha`` rank set (:func:`rank_sets`; none with too few draws) and the
    share of draws keeping its rank."""
    own = ranks(np.asarray(observed, float), resamples.lower_is_better)
    drawn = ranks(resamples.scores, resamples.lower_is_better)
    kept = (drawn == own).mean(0)
    sign = -1.0 if resamples.lower_is_better else 1.0
    sets = rank_sets(sign * np.asarray(observed, float), sign * resamples.scores, alpha)
    return {label: RankStability(int(own[i]), int(sets[0][i]) if sets else None,
                                 int(sets[1][i]) if sets else None, float(kept[i]))
            for i, label in enumerate(resamples.labels)}


IQR_OF_NORMAL = 1.3489795003921634   # Φ⁻¹(0.75) − Φ⁻¹(0.25)
MIN_TAIL_DRAWS = 20   # a 1 − α quantile of draws read from at least this many draws beyond it


def _settled(observed: np.ndarray, drawn: np.ndarray, alpha: float) -> np.ndarray:
    """Which ordered pairs' "i above j" the step-down max-t band settles (:func:`sure_signs`): ``observed[pair]``
    the observed differences mean_i − mean_j, ``drawn[draw, pair]`` the same over the noise model's draws."""
    quartiles = np.quantile(drawn, [0.25, 0.75], axis=0)
    se = (quartiles[1] - quartiles[0]) / IQR_OF_NORMAL
    spread = np.abs(drawn - drawn.mean(axis=0)).mean(axis=0) * math.sqrt(math.pi / 2)   # where the IQR is 0
    se = np.where(se > 0, se, spread)
    varies = se > 0
    t_observed = np.where(varies, observed / np.where(varies, se, 1.0), -np.inf)
    t_drawn = (drawn - observed) / np.where(varies, se, 1.0)
    claimed = np.zeros(len(observed), bool)
    while True:
        rest = varies & ~claimed
        if not rest.any():
            break
        # never below 0: a pair is claimed only in the direction its observed difference points (draws not centred
        # on the means could otherwise claim both directions)
        crit = max(0.0, float(np.quantile(t_drawn[:, rest].max(axis=1), 1 - alpha)))
        new = rest & (t_observed > crit)
        if not new.any():
            break
        claimed |= new
    return claimed


def _usable(means: np.ndarray, draws: np.ndarray, alpha: float) -> bool:
    return len(draws) >= MIN_TAIL_DRAWS / alpha and np.isfinite(draws).all() and np.isfinite(means).all()


def sure_signs(means: np.ndarray, draws: np.ndarray, alpha: float) -> np.ndarray | None:
    """The signs of the true differences of rows, settled simultaneously at level 1 − ``alpha``: ``[i, j]`` is +1
    where the data show row i's true mean above row j's, −1 below, NaN where they leave it open (0 for i = j);
    None when the draws cannot give the quantile (below).

    ``means``: the rows' observed means ``[row]``; ``draws``: draws of them from the noise model ``[draw, row]``
    (:func:`model_resamples`), centred on ``means``. For each ordered pair (i, j) the one-sided statistic
    d̂ / se, d̂ = mean_i − mean_j and se the spread of the pair's draws (their interquartile range / 1.349; a row's
    seed part is a t draw with n − 1 degrees of freedom, of infinite variance at n = 3, so a standard deviation of
    the draws would be set by their few largest). "i above j" is claimed where d̂ / se exceeds the 1 − α quantile
    over draws of the max over the ordered pairs not yet claimed of (d* − d̂) / se; the quantile is then taken
    again over the pairs left, while that claims more (a step-down: Romano and Wolf, 2005). This is the procedure
    of Mogstad, Romano, Shaikh and Wilhelm (2024, "Inference for ranks", stepwise, over all ordered pairs: a claimed
    pair's other direction stays in the max): all the claimed signs are right at once with probability at least
    1 − α (asymptotically, as the draws stand for the noise), however close the means are, so any statistic
    bounded through them (:func:`tau_bounds`) keeps the level — under the noise model, as far as the draws stand
    for it. Open as well: a pair whose draws do not vary (the model holds no noise for it: nothing says its order is
    exact). None, not a matrix of open pairs, when there are too few draws for the quantile (fewer than
    :data:`MIN_TAIL_DRAWS` / α) or a draw is not finite: an interval bounded through all-open pairs ([−1, 1] for τ)
    would read as measured."""
    means, draws = np.asarray(means, float), np.asarray(draws, float)
    if not _usable(means, draws, alpha):
        return None
    rows = len(means)
    signs = np.full((rows, rows), np.nan)
    np.fill_diagonal(signs, 0.0)
    i, j = np.triu_indices(rows, k=1)
    i, j = np.concatenate([i, j]), np.concatenate([j, i])      # every ordered pair: (i, j) claims "i above j"
    claimed = _settled(means[i] - means[j], draws[:, i] - draws[:, j], alpha)
    signs[i[claimed], j[claimed]] = 1.0
    signs[j[claimed], i[claimed]] = -1.0
    return signs


def rank_sets(means: np.ndarray, draws: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Each row's 1 − ``alpha`` confidence set for its rank (1 = the highest true mean; ``means``, ``draws`` as
    :func:`sure_signs` has them, higher better): ``[low[r], high[r]]`` with low = 1 + the rows settled above r and
    high = the number of rows − the rows settled below r, the signs of r's pairs alone settled by the step-down
    band of :func:`sure_signs` over the 2(rows − 1) ordered pairs that hold r (Mogstad, Romano, Shaikh and Wilhelm's
    marginal rank set: each row's set covers its true rank with probability ≥ 1 − α on its own, not all rows at
    once; asymptotically and under the noise model the draws stand for). Unlike the percentiles of drawn ranks (the
    report's interval before) it keeps that level however close the means are (``tests/test_rank_sets.py``), and it
    is conservative: at three seeds a row among close rows can hold almost any rank. None when the draws cannot
    give the quantile (as :func:`sure_signs`)."""
    means, draws = np.asarray(means, float), np.asarray(draws, float)
    if not _usable(means, draws, alpha):
        return None
    rows = len(means)
    low, high = np.ones(rows, int), np.full(rows, rows)
    if rows < 2:
        return low, high
    for r in range(rows):
        others = np.array([j for j in range(rows) if j != r])
        i = np.concatenate([np.full(len(others), r), others])       # (r, j): "r above j"; (j, r): "j above r"
        j = np.concatenate([others, np.full(len(others), r)])
        claimed = _settled(means[i] - means[j], draws[:, i] - draws[:, j], alpha)
        below, above = claimed[:len(others)].sum(), claimed[len(others):].sum()
        low[r], high[r] = 1 + above, rows - below
    return low, high


def observed_signs(values) -> np.ndarray:
    """The signs of the differences of values taken as exact (the paper's published scores): ``[i, j]`` = sign of
    values[i] − values[j], 0 for ties (a tie is known, not open), within the tolerance
    :func:`~harness.reporting.ranking.kendall_tau` ties values at."""
    return -pair_signs(np.asarray(values, float)).astype(float)


#: Rows up to which :func:`tau_bounds` enumerates the orders that keep a side's settled signs (8! = 40,320), and
#: the most pairs of orders (one of each side) whose τ it computes; beyond either, the outer bounds.
MAX_ENUMERATED_ROWS = 8
MAX_ORDER_PAIRS = 2_000_000


def tau_bounds(x: np.ndarray, y: np.ndarray, columns=None) -> tuple[float, float]:
    """Bounds of Kendall τ-b between two orders that agree with the sign matrices ``x`` and ``y``
    (:func:`sure_signs`, :func:`observed_signs`; NaN: open), over the rows ``columns`` (all when None).

    Exact where it can be enumerated: a side with open pairs stands for every strict order of its rows that keeps
    its settled signs (found among all orders of up to :data:`MAX_ENUMERATED_ROWS` rows, then restricted to
    ``columns``: the rows left out still carry transitivity), a side without open pairs for itself (ties included);
    the bounds are the least and the largest τ-b over pairs of those orders (at most :data:`MAX_ORDER_PAIRS`).
    Otherwise — more rows, too many pairs of orders, or settled signs no strict order keeps — outer bounds: a
    pair counts +1 (concordant) or −1 (discordant) where both signs are known, 0 where either is a known tie,
    and ±1 either way where a sign is open: with S the known pairs' sum and U the open pairs (those not tied on
    the other side), τ-b lies in [(S − U)/D, (S + U)/D], D = √((P − tx)(P − ty)) with P pairs and tx, ty the known
    ties of each side, each open pair taken either way on its own (a > b, b > c settled and a ? c open gives
    [1/3, 1] where every consistent order has τ = 1). An open sign is taken as a strict order of true means, never
    a tie. When both sign matrices hold only true signs (probability ≥ 1 − α_x − α_y) the true means' τ is inside,
    wherever the means are (but for exact ties of true means: probability zero); a percentile interval of τ over
    draws is not (drawing adds noise to the means and pulls τ towards 0: eight rows whose true orders agree, τ = 1,
    two points apart end to end: it covers 1 in fewer than 5% of the simulated stores of
    ``tests/test_tau_interval.py``)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    columns = list(range(len(x))) if columns is None else list(columns)
    exact = _enumerated_bounds(x, y, columns)
    if exact is not None:
        return exact
    x, y = x[np.ix_(columns, columns)], y[np.ix_(columns, columns)]
    i, j = np.triu_indices(len(x), k=1)
    a, b = x[i, j], y[i, j]
    open_pair = (np.isnan(a) & (b != 0)) | (np.isnan(b) & (a != 0))
    known = ~np.isnan(a) & ~np.isnan(b)
    total, unknown = float((a[known] * b[known]).sum()), int(open_pair.sum())
    pairs = len(i)
    denominator = math.sqrt((pairs - int((a == 0).sum())) * (pairs - int((b == 0).sum())))
    if denominator == 0:
        return math.nan, math.nan
    return max(-1.0, (total - unknown) / denominator), min(1.0, (total + unknown) / denominator)


def _orders(signs: np.ndarray, columns: list[int]) -> np.ndarray | None:
    """The distinct pair-sign vectors over ``columns`` (pairs i < j of them: +1 where i is above j) of the orders
    a side stands for (:func:`tau_bounds`); None where they cannot be enumerated. Past
    :data:`MAX_ENUMERATED_ROWS` rows, the orders of ``columns`` alone where they are few enough (every order of
    the rows restricted to them is one: still valid, without the transitivity the other rows carry)."""
    columns = np.asarray(columns, dtype=np.intp)
    off = ~np.eye(len(signs), dtype=bool)
    i, j = np.triu_indices(len(columns), k=1)
    if not np.isnan(signs[off]).any():
        return signs[columns[i], columns[j]][None, :]
    if len(signs) > MAX_ENUMERATED_ROWS and len(columns) <= MAX_ENUMERATED_ROWS:
        return _orders(signs[np.ix_(columns, columns)], list(range(len(columns))))
    if len(signs) > MAX_ENUMERATED_ROWS or (signs[off] == 0).any():   # a known tie beside open pairs: no strict order
        return None
    perms = _permutations(len(signs))                                     # perms[k, row] = its place (higher above)
    si, sj = np.nonzero(~np.isnan(signs) & off)
    kept = perms[np.all(np.sign(perms[:, si] - perms[:, sj]) == signs[si, sj], axis=1)]
    if not len(kept):
        return None
    vectors = np.sign(kept[:, columns[i]] - kept[:, columns[j]]).astype(np.int8)   # ±1 only: a strict order
    codes = (vectors > 0) @ (1 << np.arange(len(i), dtype=np.int64))                # ≤ 28 pairs: one int64 each
    return vectors[np.unique(codes, return_index=True)[1]]


def _permutations(rows: int) -> np.ndarray:
    import itertools

    if rows not in _PERMUTATIONS:
        _PERMUTATIONS[rows] = np.array(list(itertools.permutations(range(rows))), dtype=np.int16).reshape(-1, rows)
    return _PERMUTATIONS[rows]


_PERMUTATIONS: dict[int, np.ndarray] = {}


def _enumerated_bounds(x: np.ndarray, y: np.ndarray, columns: list[int]) -> tuple[float, float] | None:
    """:func:`tau_bounds`'s exact bounds, or None where the orders cannot be enumerated."""
    xs, ys = _orders(x, columns), _orders(y, columns)
    if xs is None or ys is None or len(xs) * len(ys) > MAX_ORDER_PAIRS:
        return None
    pairs = xs.shape[1]
    # within a side every order has the same ties (an enumerated side: none), so τ-b's denominator is one number
    denominator = math.sqrt((pairs - int((xs[0] == 0).sum())) * (pairs - int((ys[0] == 0).sum())))
    if denominator == 0:
        return math.nan, math.nan
    products = xs.astype(np.int32) @ ys.astype(np.int32).T
    return float(products.min()) / denominator, float(products.max()) / denominator


def interval(values: np.ndarray) -> tuple[float, float]:
    """The 2.5–97.5 percentile interval of resampled values (undefined ones left out; NaN if none is defined)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


# --------------------------------------------------------------------------- the noise model's inputs
def replicates(store: Store, lines: dict[str, dict], n_samples: int, stream: int = 0,
               decodings: bool = False) -> dict[str, Replicates]:
    """Each row of ``lines`` (label → summary line of one metric, all on the same test inputs) as its seeds'
    stored values and, where every row's examples reproduce them (:func:`decompose`), the values recomputed on
    ``n_samples`` bootstrap draws of the test inputs shared by every row and seed (``resampled[draw, seed]``);
    without that, values only (the input part of a comparison is then left out and no mark is given). The
    teacher evaluated once is :attr:`~harness.reporting.noise.Replicates.fixed`. Seeded and kept on the store.

    ``decodings``: a teacher whose evaluation decoded the test inputs more than once (sampled decoding,
    ``eval_decode_seeds``; :func:`teacher_decodings`) has those decodings as its replicates instead — the decoding
    seed plays the part of a seed (its variance is the decoding noise), and it is no longer fixed."""
    first = next(iter(lines.values()))
    key = ("replicates", first["task"], first["profile"], first["metric"], tuple(lines), n_samples, stream, decodings)
    if key not in store.bootstraps:
        seed = bootstrap_seed()
        if stream and seed is not None:
            seed = np.random.SeedSequence(seed).spawn(stream + 1)[stream]
        store.bootstraps[key] = _replicates(store, lines, n_samples, seed, decodings)
    return store.bootstraps[key]


def teacher_decodings(store: Store, line: dict) -> list[float] | None:
    """The corpus scores of the teacher's test decodings (the first is the reported one) where its one evaluation
    recorded more than one (``eval_decode_seeds``), else None."""
    if line["model"] != TEACHER or len(line["replicates"]) != 1:
        return None
    stage = store.manifest(line["replicates"][0].run_id).get("stages", {}).get(evaluation_label(TEACHER)) or {}
    values = ((stage.get("info") or {}).get("decodings") or {}).get(line["metric"])
    return [float(v) for v in values] if values and len(values) > 1 else None


def sampled_once(store: Store, line: dict) -> bool:
    """The line is one evaluation whose test decoding sampled (its score carries decoding noise) and that recorded
    one decoding only."""
    config = store.manifest(line["replicates"][0].run_id).get("config", {})
    return (len(line["replicates"]) == 1 and bool((config.get("eval_decode") or {}).get("do_sample"))
            and teacher_decodings(store, line) is None)


def _fixed(line: dict) -> bool:
    """The teacher evaluated once: one model shared by every seed of the students it is compared with."""
    return line["model"] == TEACHER and line["n"] == 1


def _replicates(store: Store, lines: dict[str, dict], n_samples: int, seed, decodings: bool = False
                ) -> dict[str, Replicates]:
    decoded = {label: teacher_decodings(store, line) for label, line in lines.items()} if decodings else {}
    values = {label: decoded.get(label) or line["values"] for label, line in lines.items()}
    fixed = {label: _fixed(line) and not decoded.get(label) for label, line in lines.items()}
    plain = {label: Replicates.of(values[label], fixed=fixed[label]) for label in lines}
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
            frames = [(frame, stored)]
            if decoded.get(label):   # the further decodings: the same inputs, other hypotheses
                if "decode_hypotheses" not in frame:
                    return plain
                # (their per-example scores are not stored: only metrics recomputed from hypotheses decompose)
                bare = frame.drop(columns=[c for c in frame.columns if c.startswith("score_")])
                frames += [(bare.assign(hypothesis=[h[j] for h in frame["decode_hypotheses"]]), score)
                           for j, score in enumerate(decoded[label][1:])]
            for one, score in frames:
                d = decompose(one, line["metric"], line["signature"], score)
                if d is None:
                    return plain
                parts.append(d)
        decomposed[label] = parts
    counts = input_counts(len(n_inputs), n_samples, np.random.default_rng(seed))
    return {label: Replicates.of(values[label], np.stack([d.resampled(counts) for d in parts], axis=1),
                                 fixed=fixed[label])
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

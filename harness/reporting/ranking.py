"""The one ordering of a report's rows: which of two scores is better, when they tie, and each row's rank.

Every order a report shows goes through :func:`ranks`: the bold best cells (:func:`best`), Table 2's rank and its
bootstrap interval (:func:`~harness.reporting.stability.rank_stability`), the orders written best first
(:func:`order_text`), Kendall's τ between two orders (:func:`kendall_tau`) and the best KD method a finding
measures the others against.

* Direction: a score ``s`` of a metric where lower is better (the store's ``higher_is_better`` false) is ranked
  as ``−s``; otherwise as ``s``. Better = higher after that sign.
* Ties: two scores tie when they are equal up to floating-point rounding, ``|a − b| ≤ 1e-9·max(|a|, |b|) + 1e-12``
  (the same mean summed in another order). Anything larger orders them, even below the two decimals a table
  prints: two rows may print the same mean and still rank 1 and 2 (the rank column says so; bold follows the rank).
* Ranks are competition ranks ("1224"): 1 + the number of rows strictly better, so tied rows share the best of
  their places. Undefined scores (None, NaN) are left out of :func:`best` and :func:`order_text`; :func:`ranks`
  expects finite scores.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

RELATIVE_TIE, ABSOLUTE_TIE = 1e-9, 1e-12   # scores closer than this tie (floating-point rounding only)


def pair_signs(x: np.ndarray) -> np.ndarray:
    """``sign(x[..., j] − x[..., i])`` at ``[..., i, j]``, 0 where the two tie."""
    a, b = x[..., :, None], x[..., None, :]
    tie = np.abs(b - a) <= RELATIVE_TIE * np.maximum(np.abs(a), np.abs(b)) + ABSOLUTE_TIE
    return np.where(tie, 0, np.sign(b - a)).astype(int)


def _oriented(scores, lower_is_better: bool) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    return -scores if lower_is_better else scores


def ranks(scores, lower_is_better: bool) -> np.ndarray:
    """Competition ranks along the last axis (any leading axes: resamples): 1 + how many rows are better."""
    return 1 + (pair_signs(_oriented(scores, lower_is_better)) > 0).sum(-1)


def _defined(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def best(values: Mapping[str, float | None], lower_is_better: bool) -> set[str]:
    """The names ranked first (every one of them on a tie); empty when no value is defined."""
    defined = _defined(values)
    if not defined:
        return set()
    return {name for name, rank in zip(defined, ranks(list(defined.values()), lower_is_better)) if rank == 1}


def best_first(values: Mapping[str, float | None], lower_is_better: bool) -> list[list[str]]:
    """The names grouped by rank, best group first; tied names in their given order."""
    defined = _defined(values)
    if not defined:
        return []
    groups: dict[int, list[str]] = {}
    for name, rank in zip(defined, ranks(list(defined.values()), lower_is_better)):
        groups.setdefault(int(rank), []).append(name)
    return [groups[rank] for rank in sorted(groups)]


def order_text(values: Mapping[str, float | None], lower_is_better: bool) -> str:
    """``kl > js = tvd``: the names best first, tied ones joined by ``=``."""
    return " > ".join(" = ".join(group) for group in best_first(values, lower_is_better))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b between the orders of ``x`` and ``y`` (two scorings of the same items, of one direction):
    (concordant − discordant pairs) / √((pairs − ties in x)(pairs − ties in y)), ties as :func:`ranks` has them
    (scipy.stats.kendalltau's τ-b where no two scores are within rounding). NaN when either side is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise ValueError("kendall_tau needs two sequences of the same length")
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = pair_signs(x)[i, j], pair_signs(y)[i, j]
    pairs = len(i)
    tied_x, tied_y = int((dx == 0).sum()), int((dy == 0).sum())
    denominator = math.sqrt((pairs - tied_x) * (pairs - tied_y))
    return float((dx * dy).sum() / denominator) if denominator > 0 else math.nan

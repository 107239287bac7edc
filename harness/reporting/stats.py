"""Statistics of a report: confidence intervals over seeds, rank agreement, paired bootstrap.

* :func:`mean_ci` — mean and 95% half-width of Student's t over the replicates (seeds) of one row.
* :func:`paired_p_value` — two-sided paired bootstrap test between a system and a baseline on the
  same test inputs. sacreBLEU metrics (BLEU, BLEU-n, chrF, TER) go through sacreBLEU's own paired
  bootstrap (:class:`sacrebleu.significance.PairedTest`, ``test_type="bs"``), which re-computes the
  corpus score from each resample's sufficient statistics; any other metric (ROUGE, …) resamples
  its per-example scores with the very same index draws (same generator, same seed) and compares
  means. The p-value is sacreBLEU's: the share of centred resampled |Δ| above the observed |Δ|.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..store.statistics import STATISTICS, read_statistics, statistics_file, write_statistics

# t_{0.975, ν} for ν = 1..30; beyond, the Cornish–Fisher expansion below is exact to 1e-5.
_T975 = (12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818, 2.4469119, 2.3646243, 2.3060041,
         2.2621572, 2.2281389, 2.2009852, 2.1788128, 2.1603687, 2.1447867, 2.1314495, 2.1199053,
         2.1098156, 2.1009220, 2.0930241, 2.0859634, 2.0796138, 2.0738731, 2.0686576, 2.0638986,
         2.0595386, 2.0555294, 2.0518305, 2.0484071, 2.0452296, 2.0422725)
_Z975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("t quantile needs at least one degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z, v = _Z975, float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def mean_ci(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, 95% half-width, n); the half-width is NaN with a single value (no spread to estimate)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, 1
    return mean, float(t_quantile_975(n - 1) * x.std(ddof=1) / math.sqrt(n)), n


# --------------------------------------------------------------------------- paired bootstrap
@dataclass
class Paired:
    """A system and a baseline on the same test inputs (concatenated over paired seeds)."""

    system: list[str]
    baseline: list[str]
    references: list[list[str]]
    system_scores: np.ndarray | None = None    # per-example scores of the metric, if stored
    baseline_scores: np.ndarray | None = None


def bootstrap_seed() -> int | None:
    """The resampling seed: sacreBLEU's (``SACREBLEU_SEED``, default 12345), shared by both tests."""
    seed = os.environ.get("SACREBLEU_SEED", "12345")
    return None if seed.lower() == "none" else int(seed)


def sacrebleu_metric(metric: str, signature: str):
    """The sacreBLEU metric object that produced ``metric`` with ``signature``, or None if it was another library.

    The rebuilt metric's signature must equal the stored one (version aside), so the test runs on
    exactly the statistic the table shows.
    """
    from sacrebleu.metrics import BLEU, CHRF, TER

    if not signature.startswith("nrefs:"):
        return None
    if metric == "bleu":
        obj = BLEU()
    elif metric.startswith("bleu") and metric[4:].isdigit():
        obj = BLEU(max_ngram_order=int(metric[4:]))
    elif metric == "chrf":
        obj = CHRF()
    elif metric == "ter":
        obj = TER()
    else:
        return None

    def strip(sig: str) -> set[str]:
        return {part for part in sig.split("|") if not part.startswith(("version:", "nrefs:"))}

    obj.num_refs = 1   # a signature needs it; the nrefs part is not compared
    if strip(str(obj.get_signature())) != strip(signature):
        return None
    return _memoized(obj, metric, signature)


_STATISTICS: dict[tuple, list] = {}   # (metric, signature, hypotheses, reference streams) → sentence statistics
_STATISTICS_LIMIT = 4096
#: Where sentence statistics are kept between processes (None: in this process only): :func:`keep_statistics_in`.
_STATISTICS_FOLDER: list = [None]


def keep_statistics_in(folder) -> None:
    """Keep the sentence statistics :func:`_memoized` computes in ``folder`` too (None: in memory only), one JSON
    file each, named by the sha256 of what made them (metric, signature, sacreBLEU's version, outputs, references):
    a file is only ever the statistics of its inputs, so a later report (or round) reads it instead of computing
    TER's edit distances again (≈ 85% of a report's time). Written atomically; a folder that cannot be written, or
    a file that cannot be read back as statistics of the right length, is computed again."""
    _STATISTICS_FOLDER[0] = None if folder is None else Path(folder)


@contextmanager
def statistics_kept_in(results_dir):
    """:func:`keep_statistics_in` the results folder's ``cache/statistics`` while the block runs."""
    before = _STATISTICS_FOLDER[0]
    keep_statistics_in(Path(results_dir).joinpath(*STATISTICS))
    try:
        yield
    finally:
        _STATISTICS_FOLDER[0] = before


def _memoized(obj, metric: str, signature: str):
    """``obj`` whose sentence statistics are computed once per process for the same metric (``bleu1`` and ``bleu``
    share a signature, not their statistics), outputs and references — and once for all processes where
    :func:`keep_statistics_in` names a folder: a report tests and resamples every row against the baseline many
    times, and TER's edit distances dominate. Callers only read the statistics."""
    extract = obj._extract_corpus_statistics

    def extract_once(hypotheses, references):
        if references is None:     # sacreBLEU's cached references: no key to remember them by
            return extract(hypotheses, references)
        key = (metric, signature, tuple(hypotheses), tuple(map(tuple, references)))
        if key not in _STATISTICS:
            if len(_STATISTICS) >= _STATISTICS_LIMIT:
                _STATISTICS.clear()
            folder = _STATISTICS_FOLDER[0]
            path = statistics_file(folder, metric, signature, hypotheses, references) if folder is not None else None
            stats = read_statistics(path, len(hypotheses)) if path is not None else None
            if stats is None:
                stats = extract(hypotheses, references)
                if path is not None:
                    write_statistics(path, stats)
            _STATISTICS[key] = stats
        return _STATISTICS[key]

    obj._extract_corpus_statistics = extract_once
    return obj


def reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacreBLEU's layout: one stream per reference slot, ``None`` where an input has fewer references."""
    width = max((len(r) for r in references), default=1)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]


def paired_p_value(metric: str, signature: str, paired: Paired, n_samples: int = 1000) -> float | None:
    """Two-sided p-value that system and baseline differ on ``metric``; None if it cannot be tested.

    Equal observed scores give p = 1: sacreBLEU's formula would give 1/(n+1) for two identical systems.
    """
    obj = sacrebleu_metric(metric, signature)
    if obj is not None:
        from sacrebleu.significance import PairedTest

        test = PairedTest([("baseline", paired.baseline), ("system", paired.system)], {metric: obj},
                          reference_streams(paired.references), test_type="bs", n_samples=n_samples)
        _, scores = test()
        (results,) = [v for k, v in scores.items() if k != "System"]
        base, system = results
        return 1.0 if system.score == base.score else float(system.p_value)
    if paired.system_scores is None or paired.baseline_scores is None:
        return None
    s, b = np.asarray(paired.system_scores, float), np.asarray(paired.baseline_scores, float)
    observed = abs(s.mean() - b.mean())
    if observed == 0:
        return 1.0
    rng = np.random.default_rng(bootstrap_seed())
    idx = rng.choice(len(s), size=(n_samples, len(s)), replace=True)   # sacreBLEU's draw
    diffs = np.abs(s[idx].mean(1) - b[idx].mean(1))
    return float(((diffs - diffs.mean()) > observed).sum() + 1) / (n_samples + 1)

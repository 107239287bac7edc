"""The one ordering of a report's rows (harness/reporting/ranking.py), against brute force: direction, ties,
competition ranks, Kendall's τ-b; and that bold, the rank column and the written orders follow it."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.reporting import ranking

scipy_stats = pytest.importorskip("scipy.stats")

# small integers in quarters: many exact ties, sums exact in any order
scores = st.lists(st.integers(-6, 6).map(lambda k: k / 4), min_size=1, max_size=7)


def brute_better(a: float, b: float, lower: bool) -> bool:
    """Whether ``a`` is better than ``b``, written out."""
    return a < b if lower else a > b


@given(scores, st.booleans())
def test_ranks_are_one_plus_the_rows_strictly_better(values, lower):
    got = ranking.ranks(values, lower).tolist()
    assert got == [1 + sum(brute_better(b, a, lower) for b in values) for a in values]
    # lower-is-better is the order of the negated scores; tied scores share a rank
    assert got == ranking.ranks([-v for v in values], not lower).tolist()
    assert all(got[i] == got[j] for i in range(len(values)) for j in range(len(values)) if values[i] == values[j])


@given(scores, st.booleans())
def test_best_and_best_first_follow_the_ranks(values, lower):
    named = {f"m{i}": v for i, v in enumerate(values)}
    top = max(values) if not lower else min(values)
    assert ranking.best(named, lower) == {m for m, v in named.items() if v == top}
    groups = ranking.best_first(named, lower)
    assert [m for group in groups for m in group] == sorted(named, key=lambda m: (-named[m] if not lower
                                                                                 else named[m], int(m[1:])))
    assert all(len({named[m] for m in group}) == 1 for group in groups)       # a group is one tie
    assert ranking.order_text(named, lower) == " > ".join(" = ".join(g) for g in groups)


@given(st.lists(st.lists(st.integers(0, 8).map(lambda k: k / 8), min_size=4, max_size=4), min_size=1, max_size=5),
       st.booleans())
def test_ranks_of_resamples_are_each_resamples_ranks(rows, lower):
    drawn = np.array(rows)
    assert ranking.ranks(drawn, lower).tolist() == [ranking.ranks(row, lower).tolist() for row in rows]


def test_equal_up_to_rounding_ties_anything_larger_orders():
    assert ranking.ranks([0.1 + 0.2, 0.3, 0.2], False).tolist() == [1, 1, 3]
    assert ranking.ranks([34.801, 34.799], False).tolist() == [1, 2]       # both print 34.80; still ordered
    assert ranking.best({"a": None, "b": math.nan, "c": 1.0}, True) == {"c"}
    assert ranking.best({}, False) == set() and ranking.order_text({"a": None}, False) == ""


@pytest.mark.parametrize("x,y", [([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]), ([1, 1, 2, 3], [4, 3, 3, 1]),
                                 ([46.95, 46.85, 46.24, 45.54], [0.1, 0.3, 0.3, 0.2]), ([1, 2], [2, 1])])
def test_kendall_tau_is_tau_b(x, y):
    assert ranking.kendall_tau(x, y) == pytest.approx(scipy_stats.kendalltau(x, y).statistic)


@given(scores.filter(lambda v: len(v) >= 2), st.randoms())
def test_kendall_tau_is_scipys_on_tied_scores(x, rnd):
    y = x[:]
    rnd.shuffle(y)
    expected = scipy_stats.kendalltau(x, y).statistic
    got = ranking.kendall_tau(x, y)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_kendall_tau_of_a_constant_is_undefined():
    assert math.isnan(ranking.kendall_tau([1, 1, 1], [1, 2, 3]))
    assert ranking.kendall_tau([0.1 + 0.2, 0.3, 1.0], [1, 1, 2]) == pytest.approx(1.0)   # a rounding tie is a tie


# --------------------------------------------------------------------------- the tables follow the one ordering
INPUTS = 40
TASK = {"name": "toy5", "architecture": "encoder-decoder", "metrics": ["acc"], "lower_is_better": [],
        "selection_metric": "acc"}


def _write(root, method: str, seed: int, scores: np.ndarray) -> None:
    run_id = f"toy5-{method}-{seed}"
    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    ident = {"run_id": run_id, "task": "toy5", "method": method, "profile": "ci", "seed": seed}
    models = {"teacher": ("t-eval", np.full(INPUTS, 0.9)), method: (f"{method}-{seed}", scores)}
    rows = [{**ident, "model": model, "split": "test", "metric": "acc", "value": float(s.mean()), "signature": "mean",
             "stage_key": key, "variant": "", "higher_is_better": True} for model, (key, s) in models.items()]
    pd.DataFrame(rows).to_parquet(folder / "metrics.parquet", index=False)
    ids = [f"x{i}" for i in range(INPUTS)]
    pd.concat([pd.DataFrame({"example_id": ids, "references": [["r"]] * INPUTS, "hypothesis": ["h"] * INPUTS,
                             "score_acc": s, "model": model}) for model, (_, s) in models.items()]
              ).assign(**ident).to_parquet(folder / "examples.parquet", index=False)
    pd.DataFrame(columns=["step", "epoch", "split", "name", "value"]).to_parquet(folder / "curves.parquet")
    manifest = {**ident, "task": TASK, "method": {"name": method, "params": {}}, "config": {}, "wall_seconds": 1.0}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_bold_is_rank_one_even_where_two_rows_print_the_same_mean(tmp_path):
    """kl 0.5025 and rkl 0.5000 both print 0.50: kl is ahead, so kl alone is bold and ranked first (bold once
    compared at two decimals while the rank column compared exactly). Three seeds: fewer are exploratory, never
    bold or ranked."""
    from harness.reporting.load import load_store
    from harness.reporting.summary import summarise
    from harness.reporting.tables import table2

    rng = np.random.default_rng(0)
    for seed in (1, 2, 3):
        base = np.full(INPUTS, 0.5)
        kl = base.copy()
        kl[rng.integers(INPUTS)] += 0.1
        _write(tmp_path, "kl", seed, kl)
        _write(tmp_path, "rkl", seed, base)
        _write(tmp_path, "js", seed, np.full(INPUTS, 0.2))
    store = load_store(tmp_path)
    data = table2(store, summarise(store), "toy5", "ci", baseline=None, n_samples=100).data.set_index("row")
    assert f"{data.loc['kl', 'mean']:.2f}" == f"{data.loc['rkl', 'mean']:.2f}"
    students = data.drop(index="teacher")
    assert students["best"].tolist() == (students["rank"] == 1).tolist() == [True, False, False]

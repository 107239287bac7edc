"""Twin vs real text (harness/reporting/real_text.py): Kendall τ between the students' orders on a twin and on
real text, with every shared student and without the outlier (ENGINE), on hand-made stores."""

from __future__ import annotations

import numpy as np
import pytest

from harness.reporting.load import load_store
from harness.reporting.real_text import OUTLIER, real_text
from harness.reporting.summary import summarise
from test_report_findings import SEEDS, write_run

# The others' real-text order has 4 of their 10 pairs concordant with the twin's (τ −0.2); ENGINE is last on both
# views, far below the rest, and adds 5 concordant pairs: τ over all six (9 − 6) / 15 = +0.2. The others are 0.1
# apart (per-input spread ±1, seed jitter ±0.2), so their order varies between draws; ENGINE's never does.
TWIN = {"mle": 30.0, "predistill": 30.1, "seqkd": 30.2, "kl": 30.3, "rkl": 30.4, "engine": 20.0}
REAL = {"mle": 20.2, "predistill": 20.3, "seqkd": 20.4, "kl": 20.0, "rkl": 20.1, "engine": 10.0}


@pytest.fixture(scope="module")
def outlier_store(tmp_path_factory):
    """The store of :data:`TWIN` and :data:`REAL` (three seeds each) and its summary: written once (≈ 2 s)."""
    root = tmp_path_factory.mktemp("real_text")
    for source, levels in (("embedded", TWIN), ("local", REAL)):
        for method in levels:
            for seed in SEEDS:
                write_run(root, "dart", method, seed, levels, {}, 20.0, source=source)
    store = load_store(root)
    return store, summarise(store)


@pytest.fixture(scope="module")
def outlier_table(outlier_store):
    return real_text(*outlier_store, "ci", n_samples=800)   # 20 draws beyond the 97.5% quantile: an interval


def test_tau_without_the_outlier_leaves_out_its_pairs(outlier_table):
    assert OUTLIER == "engine"
    table = outlier_table
    row = table.data.iloc[0]
    assert row["n_methods"] == 6 and OUTLIER in row["methods"].split()
    assert row["kendall_tau"] == pytest.approx(0.2)                   # (9 − 6) / 15: ENGINE's 5 pairs agree
    assert row["kendall_tau_without_engine"] == pytest.approx(-0.2)   # (4 − 6) / 10: the others disagree
    for name in ("kendall_tau", "kendall_tau_without_engine"):
        assert row[f"{name}_ci_low"] <= row[name] <= row[f"{name}_ci_high"]
        assert row[f"{name}_half_width"] == pytest.approx((row[f"{name}_ci_high"] - row[f"{name}_ci_low"]) / 2)
    assert table.header[4:8] == ["Kendall τ", "τ 95% interval", "τ without engine", "its 95% interval"]
    assert [cell.value for cell in table.rows[0][4:8:2]] == pytest.approx([0.2, -0.2])
    assert "Without engine" in table.caption and "outlier" in table.caption


def test_the_two_taus_share_their_settled_signs(outlier_store, monkeypatch):
    """ENGINE is 10 points below the rest in both views: its 5 pairs are settled and concordant in both, so with
    the same settled signs the bounds over all six are those without it mapped by (10 b + 5) / 15. Signs settled
    afresh over the five others (a max-t band over 10 pairs, not 15) would break the map on some stores."""
    from harness.reporting import real_text as module
    from harness.reporting.stability import sure_signs
    calls = []
    monkeypatch.setattr(module, "sure_signs", lambda *a: calls.append(a) or sure_signs(*a))
    row = real_text(*outlier_store, "ci", n_samples=1000).data.iloc[0]   # ≥ 20 draws beyond the 97.5% quantile
    assert len(calls) == 2   # once per view, shared by both τs
    for end in ("ci_low", "ci_high"):
        assert row[f"kendall_tau_{end}"] == pytest.approx((10 * row[f"kendall_tau_without_engine_{end}"] + 5) / 15)


def test_too_few_draws_for_the_quantile_give_no_interval(outlier_store):
    """Under 20 / 0.025 draws the settled signs cannot be read: "—", not the [−1, 1] of all-open pairs."""
    table = real_text(*outlier_store, "ci", n_samples=200)
    row = table.data.iloc[0]
    assert np.isfinite(row["kendall_tau"]) and np.isnan(row["kendall_tau_ci_low"])
    assert table.rows[0][5].text == "—"


def test_without_the_outlier_among_the_students_both_taus_agree(outlier_store):
    store, summary = outlier_store
    row = real_text(store, summary[summary["model"] != OUTLIER], "ci", n_samples=800).data.iloc[0]
    assert row["n_methods"] == 5 and row["kendall_tau"] == pytest.approx(-0.2)
    for end in ("", "_ci_low", "_ci_high"):
        assert row[f"kendall_tau{end}"] == row[f"kendall_tau_without_engine{end}"]
    assert np.isfinite(row["kendall_tau_ci_low"])

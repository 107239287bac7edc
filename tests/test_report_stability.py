"""Rank stability, Kendall τ's interval and Table 2's marks from the noise model (seeds and test inputs together), on
a hand-made store: one method clearly wins (keeps its rank in every draw), two tie (each keeps it in about half);
a one-seed row far ahead of them all is shown as exploratory — never bold, marked † or ranked; the resampled BLEU
is sacreBLEU's corpus BLEU of the drawn inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from harness.reporting import noise
from harness.reporting.load import load_store
from harness.reporting.compare import comparison
from harness.reporting.ranking import ranks
from harness.reporting.stability import decompose, input_counts, paired_differences
from harness.reporting.stats import bootstrap_seed, reference_streams
from harness.reporting.summary import summarise
from harness.reporting.tables import table2

TASK = {"name": "toy4", "architecture": "encoder-decoder", "metrics": ["acc"], "lower_is_better": [],
        "selection_metric": "acc"}
INPUTS = 200
SEEDS = (42, 43, 44)


def scores_of(method: str, seed: int) -> np.ndarray:
    """Per-example scores: ``kl`` far above the others; ``rkl`` and ``js`` the same scores in other orders (eighths:
    their sums are exact in any order, so their means are equal)."""
    base = np.random.default_rng(seed).integers(0, 9, INPUTS) / 8.0
    if method == "kl":
        return base + 5.0
    return np.random.default_rng([seed, len(method)]).permutation(base)


def write_run(root, method: str, seed: int, scores: np.ndarray | None = None) -> None:
    run_id = f"toy4-{method}-{seed}"
    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    ident = {"run_id": run_id, "task": "toy4", "method": method, "profile": "ci", "seed": seed}
    scores = scores_of(method, seed) if scores is None else scores
    models = {"teacher": ("t-eval", np.full(INPUTS, 9.0)), method: (f"{method}-{seed}", scores)}
    rows = [{**ident, "model": model, "split": "test", "metric": "acc", "value": float(scores.mean()),
             "signature": "mean", "stage_key": key, "variant": "", "higher_is_better": True}
            for model, (key, scores) in models.items()]
    pd.DataFrame(rows).to_parquet(folder / "metrics.parquet", index=False)
    ids = [f"x{i}" for i in range(INPUTS)]
    pd.concat([pd.DataFrame({"example_id": ids, "references": [["r"]] * INPUTS, "hypothesis": ["h"] * INPUTS,
                             "score_acc": scores, "model": model}) for model, (_, scores) in models.items()]
              ).assign(**ident).to_parquet(folder / "examples.parquet", index=False)
    pd.DataFrame(columns=["step", "epoch", "split", "name", "value"]).to_parquet(folder / "curves.parquet")
    manifest = {**ident, "task": TASK, "method": {"name": method, "params": {}}, "config": {}, "wall_seconds": 1.0}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def write_store(root):
    """kl clearly ahead of rkl and js, which tie, at every seed."""
    for method in ("kl", "rkl", "js"):
        for seed in SEEDS:
            write_run(root, method, seed)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("store"))


def rank_columns(root) -> pd.DataFrame:
    store = load_store(root)
    table = table2(store, summarise(store), "toy4", "ci", baseline=None, n_samples=400)
    return table.data.set_index("row")[["rank", "rank_ci_low", "rank_ci_high", "rank_kept"]]


def test_a_clear_winner_keeps_its_rank_and_two_tied_methods_keep_theirs_half_the_time(root):
    data = rank_columns(root)
    assert "teacher" not in data.index or data.loc["teacher"].isna().all()      # students are ranked
    assert data.loc["kl", "rank"] == 1 and data.loc["kl", "rank_kept"] == 1.0
    assert (data.loc["kl", "rank_ci_low"], data.loc["kl", "rank_ci_high"]) == (1, 1)
    for tied in ("rkl", "js"):
        assert data.loc[tied, "rank"] == 2                                      # equal means share the rank
        assert 0.35 < data.loc[tied, "rank_kept"] < 0.65
        assert (data.loc[tied, "rank_ci_low"], data.loc[tied, "rank_ci_high"]) == (2, 3)
    pd.testing.assert_frame_equal(data, rank_columns(root))                     # seeded: the same draws again


def test_kendall_tau_has_an_interval_around_it(root):
    store = load_store(root)
    paper = pd.DataFrame([{"table": "table2", "task": "toy4", "model": m, "setting": "", "metric": "acc", "value": v}
                          for m, v in (("kl", 50.0), ("rkl", 40.0), ("js", 30.0))])
    _, agreement = comparison(store, summarise(store), "toy4", "ci", paper, n_samples=400)
    tau = agreement.data.set_index("metric").loc["acc"]
    assert tau["kendall_tau"] == pytest.approx(2 / np.sqrt(6))                 # rkl = js tie in ours: τ-b
    assert tau["kendall_tau_ci_low"] <= tau["kendall_tau"] <= tau["kendall_tau_ci_high"]
    assert tau["kendall_tau_ci_low"] < tau["kendall_tau_ci_high"]               # the tie breaks either way
    assert tau["kendall_tau_ci_high"] == pytest.approx(1.0)
    assert "τ 95% interval" in agreement.header


@pytest.fixture(scope="module")
def with_one_seed(tmp_path_factory):
    """The store above and tvd, one seed, far ahead of every other student."""
    root = write_store(tmp_path_factory.mktemp("one-seed"))
    write_run(root, "tvd", SEEDS[0], scores_of("kl", SEEDS[0]) + 10.0)
    return root


def test_a_one_seed_row_is_exploratory_never_bold_marked_or_ranked(with_one_seed):
    store = load_store(with_one_seed)
    table = table2(store, summarise(store), "toy4", "ci", baseline="rkl", n_samples=200)
    data = table.data.set_index("row")
    assert data.loc["tvd", "mean"] > data.loc["kl", "mean"] + 5                # far ahead of the best …
    assert not bool(data.loc["tvd", "best"])                                    # … but not bold,
    assert not bool(data.loc["tvd", "significant"])                             # not †,
    assert pd.isna(data.loc["tvd", "rank"]) and pd.isna(data.loc["tvd", "rank_ci_low"])   # no rank, no interval
    assert bool(data.loc["tvd", "exploratory"]) and pd.isna(data.loc["tvd", "difference"])
    shown = {row[0].text: row for row in table.rows}
    assert shown["tvd"][1].text == "1*" and not shown["tvd"][2].bold and not shown["tvd"][2].mark
    assert shown["tvd"][-2].text == "—" and shown["tvd"][-1].text == "—"
    assert "exploratory" in table.caption
    # the best among the rows with three seeds is bold and ranked first
    assert bool(data.loc["kl", "best"]) and data.loc["kl", "rank"] == 1 and not bool(data.loc["kl", "exploratory"])


def test_the_dagger_of_a_three_seed_row_is_the_noise_models_difference(with_one_seed):
    """† on kl and js against rkl: the interval of noise.difference of their seeds' scores, each recomputed on
    the same bootstrap draws of the test inputs (the report's seed, one draw shared by every row and seed)."""
    store = load_store(with_one_seed)
    data = table2(store, summarise(store), "toy4", "ci", baseline="rkl", n_samples=200).data.set_index("row")
    counts = input_counts(INPUTS, 200, np.random.default_rng(bootstrap_seed()))

    def row(method):
        scores = np.stack([scores_of(method, seed) for seed in SEEDS])               # [seed, input]
        return noise.Replicates.of(scores.mean(1), (counts @ scores.T) / INPUTS)

    for method, marked in (("kl", True), ("js", False)):
        expected = noise.difference(row(method), row("rkl"))
        assert expected.decided == marked
        assert bool(data.loc[method, "significant"]) == marked
        assert (data.loc[method, "diff_ci_low"], data.loc[method, "diff_ci_high"]) == (
            pytest.approx(expected.low), pytest.approx(expected.high))


def test_kendall_tau_has_no_interval_when_a_method_has_one_seed(with_one_seed):
    store = load_store(with_one_seed)
    paper = pd.DataFrame([{"table": "table2", "task": "toy4", "model": m, "setting": "", "metric": "acc", "value": v}
                          for m, v in (("kl", 50.0), ("rkl", 40.0), ("js", 30.0), ("tvd", 20.0))])
    _, agreement = comparison(store, summarise(store), "toy4", "ci", paper, n_samples=200)
    tau = agreement.data.set_index("metric").loc["acc"]
    assert math.isfinite(tau["kendall_tau"]) and math.isnan(tau["kendall_tau_ci_low"])
    assert agreement.rows[0][4].text == "—"


def test_competition_ranks_share_the_best_place_on_ties():
    scores = np.array([[3.0, 1.0, 3.0, 2.0]])
    assert ranks(scores, lower_is_better=False).tolist() == [[1, 4, 1, 3]]
    assert ranks(scores, lower_is_better=True).tolist() == [[3, 1, 3, 2]]


def test_resampled_bleu_is_sacrebleus_corpus_bleu_of_the_drawn_inputs():
    from sacrebleu.metrics import BLEU

    hyps = ["the cat sat on the mat", "a dog barks loudly", "it rains today", "birds fly south in winter"]
    refs = [["the cat sat on a mat"], ["a dog barks", "the dog barks loudly"], ["it is raining today"],
            ["birds fly south for winter"]]
    frame = pd.DataFrame({"hypothesis": hyps, "references": refs})
    bleu = BLEU()
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(2)]
    stored = bleu.corpus_score(hyps, streams).score
    decomposed = decompose(frame, "bleu", str(bleu.get_signature()), stored)
    assert decomposed is not None
    counts = np.array([[2, 0, 1, 1], [1, 1, 1, 1]], dtype=float)
    drawn = [i for i, c in enumerate(counts[0]) for _ in range(int(c))]
    again = bleu.corpus_score([hyps[i] for i in drawn], [[s[i] for i in drawn] for s in streams]).score
    assert decomposed.resampled(counts).tolist() == pytest.approx([again, stored])
    assert decompose(frame, "bleu", str(bleu.get_signature()), stored + 1.0) is None   # must reproduce the table


def test_dart_official_bleu_is_resampled_from_its_own_statistics():
    from harness.metrics import dart_official_bleu

    hyps = ["Hawaii Five-O, 1:02:38.", "the cat sat on the mat", "a dog barks loudly"]
    refs = [["Hawaii Five-O, 1:02:38"], ["the cat sat on a mat", "a cat sat on the mat"], ["a dog barks"]]
    scores = dart_official_bleu(hyps, refs)
    frame = pd.DataFrame({"hypothesis": hyps, "references": refs})
    stored, signature = scores.corpus["bleu_official"], scores.signatures["bleu_official"]
    decomposed = decompose(frame, "bleu_official", signature, stored)
    assert decomposed is not None
    again = dart_official_bleu([hyps[0], hyps[0], hyps[2]], [refs[0], refs[0], refs[2]]).corpus["bleu_official"]
    assert decomposed.resampled(np.array([[2.0, 0.0, 1.0]])).tolist() == pytest.approx([again])


def test_paired_differences_rescore_both_runs_on_the_same_draw_of_inputs():
    """Brute force: per resample, draw the input indices once, score both systems' corpus chrF (and BLEU) on
    exactly those inputs with sacreBLEU, and average system − baseline over the seed pairs."""
    from sacrebleu.metrics import BLEU, CHRF

    refs = [["the cat sat on a mat"], ["a dog barks", "the dog barks loudly"], ["it is raining today"],
            ["birds fly south for winter"], ["we eat bread with butter"]]
    systems = {"a1": ["the cat sat on the mat", "a dog barks loudly", "it rains today", "birds fly south in winter",
                      "we eat bread"],
               "b1": ["a cat sat on a mat", "the dog barks", "it is raining", "birds fly", "bread with butter"],
               "a2": ["the cat sat", "dog barks loudly", "it is raining today", "birds fly south", "we eat butter"],
               "b2": ["the cat", "a dog barks", "rain today", "birds fly south for winter", "we eat bread with"]}
    streams = reference_streams(refs)
    n_samples, seed = 60, 7
    for metric in (CHRF(), BLEU()):
        name = "chrf" if isinstance(metric, CHRF) else "bleu"

        def decomposed(system):
            stored = metric.corpus_score(systems[system], streams).score
            frame = pd.DataFrame({"hypothesis": systems[system], "references": refs})
            return decompose(frame, name, str(metric.get_signature()), stored)

        pairs = [(decomposed("a1"), decomposed("b1")), (decomposed("a2"), decomposed("b2"))]
        got = paired_differences(pairs, n_samples, seed)
        draws = np.random.default_rng(seed).integers(len(refs), size=(n_samples, len(refs)))

        def score(system, draw):
            hypotheses = [systems[system][i] for i in draw]
            return metric.corpus_score(hypotheses, [[s[i] for i in draw] for s in streams]).score

        want = [np.mean([score("a1", d) - score("b1", d), score("a2", d) - score("b2", d)]) for d in draws]
        assert got == pytest.approx(want, abs=1e-9)
        assert np.std(got) > 0
        same = paired_differences([(pairs[0][0], pairs[0][0])], n_samples, seed)
        assert (same == 0).all()


def test_sentence_statistics_are_kept_in_the_results_folder_and_read_back_the_same(tmp_path, monkeypatch):
    """TER's statistics computed once are read back by a later process (here: after the memory is cleared) from
    ``cache/statistics``, equal to computing them; a damaged file is computed again; outside the block nothing
    is written."""
    from harness.reporting import stats

    hyps, refs = ["the cat sat on the mat", "a dog"], [["the cat sat on a mat", "dogs"]]
    expected = stats.sacrebleu_metric("ter", _ter_sig())._extract_corpus_statistics(hyps, refs)
    stats._STATISTICS.clear()
    with stats.statistics_kept_in(tmp_path):
        first = stats.sacrebleu_metric("ter", _ter_sig())._extract_corpus_statistics(hyps, refs)
    files = list((tmp_path / "cache" / "statistics").rglob("*.json"))
    assert first == expected and len(files) == 1
    stats._STATISTICS.clear()
    calls = []
    from sacrebleu.metrics import TER
    original = TER._extract_corpus_statistics
    monkeypatch.setattr(TER, "_extract_corpus_statistics", lambda self, *a: calls.append(1) or original(self, *a))
    with stats.statistics_kept_in(tmp_path):
        again = stats.sacrebleu_metric("ter", _ter_sig())._extract_corpus_statistics(hyps, refs)
    assert again == expected and calls == []                 # read from the file, not computed
    files[0].write_text("[1, 2")                              # damaged: computed again, and rewritten
    stats._STATISTICS.clear()
    with stats.statistics_kept_in(tmp_path):
        third = stats.sacrebleu_metric("ter", _ter_sig())._extract_corpus_statistics(hyps, refs)
    assert third == expected and calls == [1]
    stats._STATISTICS.clear()
    stats.sacrebleu_metric("ter", _ter_sig())._extract_corpus_statistics(["x"], [["y"]])
    assert len(list((tmp_path / "cache" / "statistics").rglob("*.json"))) == 1   # outside: memory only


def _ter_sig() -> str:
    from sacrebleu.metrics import TER

    ter = TER()
    ter.num_refs = 1
    return str(ter.get_signature())

"""The pieces of ``harness report`` that need no trained model: statistics, renderings, the paper's data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.reporting import stats
from harness.paper.published import published
from harness.reporting.render import Cell, Table, tex_escape, to_html, to_latex, to_markdown
from harness.reporting.tables import prefix_variant

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("df", [1, 2, 3, 5, 9, 29, 30, 31, 40, 120, 1000])
def test_t_quantile_is_students(df):
    assert stats.t_quantile_975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=2e-5)


def test_mean_ci():
    values = [40.1, 41.3, 39.8, 42.0]
    mean, ci, n = stats.mean_ci(values)
    sem = np.std(values, ddof=1) / 2
    assert (mean, n) == (pytest.approx(np.mean(values)), 4)
    assert ci == pytest.approx(scipy_stats.t.ppf(0.975, 3) * sem, rel=1e-6)
    assert math.isnan(stats.mean_ci([3.0])[1]) and stats.mean_ci([])[2] == 0


def test_per_example_bootstrap_resamples_like_sacrebleu():
    rng = np.random.default_rng(0)
    base = rng.normal(30, 5, 200)
    better = stats.Paired([""] * 200, [""] * 200, [[""]] * 200, base + 3, base)
    same = stats.Paired([""] * 200, [""] * 200, [[""]] * 200, base.copy(), base)
    noisy = stats.Paired([""] * 200, [""] * 200, [[""]] * 200, base + rng.normal(0, 8, 200), base)
    assert stats.paired_p_value("rouge2", "", better) == pytest.approx(1 / 1001)
    assert stats.paired_p_value("rouge2", "", same) == 1.0
    assert stats.paired_p_value("rouge2", "", noisy) > 0.05
    # sacreBLEU's own draw: the same generator and seed give the same indices
    idx = np.random.default_rng(stats.bootstrap_seed()).choice(200, size=(1000, 200), replace=True)
    s, b = noisy.system_scores, noisy.baseline_scores
    diffs = np.abs(s[idx].mean(1) - b[idx].mean(1))
    expected = (((diffs - diffs.mean()) > abs(s.mean() - b.mean())).sum() + 1) / 1001
    assert stats.paired_p_value("rouge2", "", noisy) == pytest.approx(expected)
    assert stats.paired_p_value("rouge2", "", stats.Paired(["a"], ["b"], [["c"]])) is None


def test_sacrebleu_metrics_are_rebuilt_from_their_signature():
    from sacrebleu.metrics import BLEU, TER

    def signature(metric):
        metric.corpus_score(["a b c"], [["a b c"]])
        return str(metric.get_signature())

    assert isinstance(stats.sacrebleu_metric("bleu", signature(BLEU())), BLEU)
    assert stats.sacrebleu_metric("bleu2", signature(BLEU(max_ngram_order=2))).max_ngram_order == 2
    assert isinstance(stats.sacrebleu_metric("ter", signature(TER())), TER)
    assert stats.sacrebleu_metric("bleu", signature(BLEU(lowercase=True))) is None   # another statistic
    assert stats.sacrebleu_metric("rouge1", "") is None


def test_remembered_statistics_belong_to_their_metric():
    """BLEU and BLEU-1 share a signature: each must get its own statistics back, equal to sacreBLEU's own."""
    from sacrebleu.metrics import BLEU

    hyps = ["the cat sat on the mat", "a dog ran far away", "it is raining today"]
    refs = [["the cat sat on a mat", "a dog ran away", "it rains today"]]
    for name, order in (("bleu", 4), ("bleu1", 1), ("bleu", 4)):
        fresh = BLEU(max_ngram_order=order)
        fresh.corpus_score(hyps, refs)           # a signature names the number of references
        obj = stats.sacrebleu_metric(name, str(fresh.get_signature()))
        assert obj._extract_corpus_statistics(hyps, refs) == fresh._extract_corpus_statistics(hyps, refs)
        assert obj.corpus_score(hyps, refs).score == pytest.approx(fresh.corpus_score(hyps, refs).score)


def test_sacrebleu_path_agrees_with_a_direct_paired_test():
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    refs = [["the cat sat on the mat", "a cat sat on a mat"], ["dogs bark at night"], ["it rains in spring"]] * 10
    base = ["the cat sat", "dogs bark", "it rains"] * 10
    system = ["the cat sat on the mat", "dogs bark at night", "it rains"] * 10
    metric = BLEU()
    metric.corpus_score(base, stats.reference_streams(refs))
    p = stats.paired_p_value("bleu", str(metric.get_signature()), stats.Paired(system, base, refs), n_samples=300)
    _, scores = PairedTest([("b", base), ("s", system)], {"bleu": BLEU()}, stats.reference_streams(refs),
                           test_type="bs", n_samples=300)()
    assert p == pytest.approx(scores["BLEU"][1].p_value) and p < 0.05


@pytest.mark.parametrize("model,setting,expected", [
    ("tvd", {"method.teacher_prefixes": "online"}, ("tvd", {}, "online")),
    ("js", {"method.teacher_prefixes": "offline", "student.encoder_layers": 2},
     ("js", {"student.encoder_layers": 2}, "offline")),
    ("tvd", {"method.online_teacher": True}, ("tvd", {}, "online")),
    ("tvd_online", {}, ("tvd", {}, "online")),
    ("tvd", {}, None),
])
def test_prefix_variant(model, setting, expected):
    assert prefix_variant(model, setting) == expected


def test_renderings_escape_and_mark():
    table = Table("t_x", "Table — a_b", ["model", "TER↓"], [[Cell(text="js (beta=0.5)"), Cell(46.5, 0.31, bold=True,
                                                                                           mark=True)],
                                                        [Cell(text="a|b"), Cell(float("nan"))]], "± over 3 seeds")
    md = to_markdown(table)
    assert "| js (beta=0.5) | **46.50** ± 0.31 † |" in md and "a\\|b" in md and "| — |" in md
    starred = to_markdown(Table("t_y", "T", ["model"], [[Cell(text="a")]], "n*: exploratory"))
    assert starred.rstrip().endswith("*n\\*: exploratory*")      # the caption's own asterisk is no emphasis
    tex = to_latex(table)
    assert r"\textbf{46.50} $\pm$ 0.31$^\dagger$" in tex and r"TER$\downarrow$" in tex and r"\label{tab:t-x}" in tex
    assert tex_escape("50% of a_b & c") == r"50\% of a\_b \& c"
    page = to_html(table)
    assert "<b>46.50</b> ± 0.31<sup" in page and "<caption>± over 3 seeds</caption>" in page


def test_the_published_numbers_ship_with_the_package():
    paper = published()
    assert len(paper) == 194
    counts = paper.groupby("table").size().to_dict()
    assert counts == {"table2": 135, "table3": 36, "table4": 8, "figure2": 15}
    value = paper.set_index(["table", "task", "model", "setting", "metric"])["value"]
    assert value[("table2", "dart", "tvd", "", "bleu")] == 46.95
    assert value[("table2", "wmt16_en_ro", "engine", "", "ter")] == 84.02
    assert value[("table2", "commonsense_dialogue", "js", "", "bleu1")] == 11.55
    assert value[("table3", "xsum", "js", "", "r_cvg")] == 1.75
    assert value[("table3", "commonsense_dialogue", "teacher", "", "teacher_dist")] == 81.19
    assert value[("table4", "dart", "tvd", "teacher_prefix=online", "bleu")] == 46.57
    assert value[("figure2", "dart", "js", "student.encoder_layers=2", "bleu")] == 46.1
    assert not paper.duplicated(["table", "task", "model", "setting", "metric"]).any()


def test_format_run_table_still_formats_a_run():
    from types import SimpleNamespace

    from harness.reporting.run_table import format_run_table

    metrics = pd.DataFrame({"task": "toy", "model": ["teacher", "tvd", "tvd", "tvd"],
                            "metric": ["bleu", "bleu", "ter", "lag"], "value": [50.0, 40.0, 60.0, 2.0],
                            "higher_is_better": [True, True, False, False]})
    text = format_run_table(SimpleNamespace(metrics=metrics, run_id="r1", manifest={"wall_seconds": 3.0}))
    header = text.splitlines()[1].split()
    assert header == ["model", "BLEU", "TER↓", "lag↓"] and "40.00" in text   # arrows from higher_is_better


# --------------------------------------------------------------------------- a synthetic store, no training
def _write_run(root, run_id, seed, beta, acc, teacher_acc=0.9, wall=10.0):
    """One run of an unregistered task "toy" as the store held it before runs described themselves (no
    ``higher_is_better``, no task or method description in the manifest): metrics, examples, manifest."""
    import json

    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    ident = {"run_id": run_id, "task": "toy", "method": "m1", "profile": "ci", "seed": seed}
    rows = []
    for model, key, value in (("teacher", "t-eval", teacher_acc), ("m1", f"m1-eval-{seed}-{beta}", acc.mean())):
        for metric, v in (("acc", value), ("r_llh", 1.0 + seed)):
            rows.append({**ident, "model": model, "split": "test", "metric": metric, "value": float(v),
                         "signature": "", "stage_key": key, "variant": f"method.beta={beta}",
                         "method.beta": beta, "wall_seconds": wall})
    pd.DataFrame(rows).to_parquet(folder / "metrics.parquet", index=False)
    ids = [f"x{i}" for i in range(len(acc))]
    examples = pd.concat([
        pd.DataFrame({"example_id": ids, "references": [["r"]] * len(acc), "hypothesis": ["h"] * len(acc),
                      "score_acc": np.full(len(acc), teacher_acc), "model": "teacher"}),
        pd.DataFrame({"example_id": ids, "references": [["r"]] * len(acc), "hypothesis": ["h"] * len(acc),
                      "score_acc": acc, "model": "m1"})])
    examples.assign(**ident).to_parquet(folder / "examples.parquet", index=False)
    pd.DataFrame(columns=["step", "epoch", "split", "name", "value"]).to_parquet(folder / "curves.parquet")
    (folder / "manifest.json").write_text(json.dumps({**ident, "config": {"method_params": {"beta": beta}},
                                                      "wall_seconds": wall}))


def test_the_store_reads_each_manifest_once(tmp_path, monkeypatch):
    import harness.reporting.load as load
    import harness.store.read as read

    calls = []
    real = read.read_manifest
    spy = lambda folder: calls.append(Path(folder).name) or real(folder)   # noqa: E731
    monkeypatch.setattr(read, "read_manifest", spy)     # what load_metrics reads with
    monkeypatch.setattr(load, "read_manifest", spy)     # what the report's own descriptions read with
    rng = np.random.default_rng(2)
    for run in ("r1", "r2"):
        _write_run(tmp_path, run, 1, 0.5, rng.uniform(0, 1, 10))
    store = load.load_store(tmp_path)
    assert store.manifest("r1")["run_id"] == "r1" and store.manifest("r2")["run_id"] == "r2"
    assert sorted(calls) == ["r1", "r2"]


def test_a_store_with_axes_costs_and_an_unregistered_task(tmp_path):
    from harness.reporting.load import load_store
    from harness.reporting.summary import summarise
    from harness.reporting.tables import table2

    rng = np.random.default_rng(1)
    high, low = rng.uniform(0.6, 1.0, 50), rng.uniform(0.0, 0.4, 50)
    _write_run(tmp_path, "r1", 1, 0.5, high, wall=10.0)
    _write_run(tmp_path, "r2", 2, 0.5, high[::-1].copy(), wall=14.0)
    _write_run(tmp_path, "r3", 1, 0.85, low, wall=12.0)
    store = load_store(tmp_path)
    assert store.axes == ["method.beta"]                        # variant is no axis; wall_seconds is a cost
    summary = summarise(store)
    line = {(r.label, r.metric): r for r in summary.itertuples()}
    assert line[("teacher", "acc")].n == 1                      # one evaluation, three runs
    assert line[("teacher", "acc")].setting == {"method.beta": None}   # beta does not change the teacher
    assert line[("m1 (beta=0.5)", "acc")].n == 2
    assert line[("m1 (beta=0.5)", "acc")].mean == pytest.approx(high.mean())
    assert line[("m1 (beta=0.5)", "wall_seconds")].mean == pytest.approx(12.0)
    assert ("teacher", "wall_seconds") not in line               # a run's cost belongs to its own model
    table = table2(store, summary, "toy", "ci", baseline="teacher", n_samples=200)
    # metrics read off the data, risks and costs apart; students with two seeds and one are exploratory: no rank
    # column, no †, no bold, however far apart they are
    assert table.header == ["model", "n", "acc"]
    data = table.data.set_index("row")
    assert data["exploratory"].tolist() == [False, True, True]           # the teacher is one shared model
    assert not data["significant"].any() and not data["best"].any()
    assert data["difference"].isna().all()
    assert [row[1].text for row in table.rows] == ["1", "2*", "1*"]


# --------------------------------------------------------------------------- a store that describes itself
TOY_TASK = {"name": "toy2", "architecture": "encoder-decoder", "metrics": ["wer", "acc"], "lower_is_better": ["wer"],
            "selection_metric": "acc"}


def _describe(method: str, beta: float, offline: bool) -> dict:
    """A method description as a run records it (``Method.describe()``), with the parameters the run ran with."""
    weights = {"student_sample": beta, ("teacher_offline" if offline else "teacher_sample"): 1.0 - beta}
    return {"name": method, "params": {"beta": beta}, "init": "predistilled", "prefix_weights": weights,
            "needs_teacher": True, "needs_pseudo_labels": offline and beta < 1.0}


def _write_described_run(root, method: str, beta: float, acc: float, offline: bool, swept: bool) -> None:
    """One run of the unregistered task "toy2" as the pipeline writes it now: ``higher_is_better`` in
    metrics.parquet, the task and method descriptions in the manifest; ``method.beta`` is a column only when
    ``swept`` (the value differs from the task's default), else the config says it."""
    import json

    run_id = f"toy2-{method}-{beta}"
    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    ident = {"run_id": run_id, "task": "toy2", "method": method, "profile": "ci", "seed": 1}
    rows = [{**ident, "model": model, "split": "test", "metric": metric, "value": value, "signature": "",
             "stage_key": key, "variant": f"method.beta={beta}" if swept else "", "higher_is_better": metric != "wer",
             **({"method.beta": beta} if swept else {})}
            for model, key, values in (("teacher", "t-eval", {"acc": 0.9, "wer": 0.1}),
                                       (method, f"{run_id}-eval", {"acc": acc, "wer": 1.0 - acc}))
            for metric, value in values.items()]
    pd.DataFrame(rows).to_parquet(folder / "metrics.parquet", index=False)
    pd.DataFrame(columns=["step", "epoch", "split", "name", "value"]).to_parquet(folder / "curves.parquet")
    manifest = {**ident, "task": TOY_TASK, "method": _describe(method, beta, offline),
                "config": {"method_params": {"beta": beta}}, "wall_seconds": 1.0}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_swept_beta_is_reported_with_the_beta_each_run_ran_with(tmp_path):
    from harness.reporting.load import load_store
    from harness.reporting.summary import summarise
    from harness.reporting.tables import table2, table4

    _write_described_run(tmp_path, "js", 0.5, acc=0.4, offline=True, swept=True)
    _write_described_run(tmp_path, "js", 0.85, acc=0.6, offline=True, swept=False)   # the task default: no column
    _write_described_run(tmp_path, "js_online", 0.85, acc=0.7, offline=False, swept=False)
    store = load_store(tmp_path)
    summary = summarise(store)
    acc = {r.label: r.mean for r in summary.itertuples() if r.metric == "acc"}
    assert acc == {"teacher": 0.9, "js (beta=0.5)": 0.4, "js (beta=0.85)": 0.6, "js_online": 0.7}
    table = table2(store, summary, "toy2", "ci", baseline=None)
    # the task's metrics in its own order; its lower-is-better one from higher_is_better, not from a list of names
    assert table.header == ["model", "n", "wer↓", "acc"]
    assert not table.data["best"].any()                                # one seed each: exploratory, never bold
    # Table 4 pairs js_online (β 0.85) with the js run at β 0.85, which ran on offline teacher outputs
    pairs = table4(store, summary, "toy2", "ci")
    assert [[c.text for c in row[:2]] for row in pairs.rows] == [["js", "online"], ["js", "offline"]]
    assert set(pairs.data["row"]) == {"js_online", "js (beta=0.85)"}
    assert store.task_info("toy2", "ci").primary == "acc"


def test_table4_pairs_by_the_method_description_each_run_recorded(tmp_path):
    """At β = 1 a JS run uses no teacher outputs: a default-parameter instance (β 0.5) would call it offline."""
    from harness.reporting.load import load_store
    from harness.reporting.summary import summarise
    from harness.reporting.tables import table4

    _write_described_run(tmp_path, "js", 1.0, acc=0.4, offline=True, swept=True)
    _write_described_run(tmp_path, "js_online", 1.0, acc=0.5, offline=False, swept=True)
    store = load_store(tmp_path)
    assert table4(store, summarise(store), "toy2", "ci") is None

    # a method no registry knows pairs all the same: its run says it trained on pseudo-labels
    other = tmp_path / "other"
    _write_described_run(other, "myjs", 0.5, acc=0.6, offline=True, swept=True)
    _write_described_run(other, "myjs_online", 0.5, acc=0.7, offline=False, swept=True)
    store = load_store(other)
    pairs = table4(store, summarise(store), "toy2", "ci")
    assert set(zip(pairs.data["row"], pairs.data["prefixes"])) == {("myjs", "offline"), ("myjs_online", "online")}


# --------------------------------------------------------------------------- --compare paper: like with like
def _write_scored_run(root, method: str, values: dict[str, float], paper_metrics: dict | None) -> None:
    """One run of the unregistered task "toy3" whose manifest declares ``paper_metrics`` (None: a manifest
    written before tasks declared them); the teacher scores 1.0 on every metric."""
    import json

    run_id = f"toy3-{method}"
    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    ident = {"run_id": run_id, "task": "toy3", "method": method, "profile": "ci", "seed": 1}
    rows = [{**ident, "model": model, "split": "test", "metric": metric, "value": value, "signature": "",
             "stage_key": f"{model}-{run_id if model != 'teacher' else 'shared'}", "variant": "",
             "higher_is_better": not metric.startswith("r_")}
            for model, scored in (("teacher", {m: 1.0 for m in values}), (method, values))
            for metric, value in scored.items()]
    pd.DataFrame(rows).to_parquet(folder / "metrics.parquet", index=False)
    pd.DataFrame(columns=["step", "epoch", "split", "name", "value"]).to_parquet(folder / "curves.parquet")
    task = {"name": "toy3", "architecture": "encoder-decoder", "metrics": ["bleu", "bleu_official"],
            "lower_is_better": [], "selection_metric": "bleu"}
    if paper_metrics is not None:
        task["paper_metrics"] = paper_metrics
    manifest = {**ident, "task": task, "method": {"name": method, "params": {}}, "config": {}, "wall_seconds": 1.0}
    (folder / "manifest.json").write_text(json.dumps(manifest))


PUBLISHED = pd.DataFrame([{"table": table, "task": "toy3", "model": model, "setting": "", "metric": metric,
                           "value": value}
                          for table, metric, values in (("table2", "bleu", {"kl": 40.0, "js": 50.0}),
                                                        ("table3", "r_cvg", {"kl": 0.5, "js": 0.4}))
                          for model, value in values.items()])


@pytest.mark.parametrize("declared", [True, False])
def test_compare_paper_sets_each_column_beside_the_comparable_metric(tmp_path, declared):
    """Ours ranks kl above js on ``bleu`` and ``r_cvg`` but like the paper on the comparable metrics: the tables
    must read those (the task's ``bleu_official``, the general ``r_cvg_paper``) and name them; a task that
    declares no ``paper_metrics`` still gets the general ones."""
    from harness.reporting.load import load_store
    from harness.reporting.compare import comparison
    from harness.reporting.summary import summarise

    for method, (bleu, official, r_cvg, r_cvg_paper) in (("kl", (60.0, 30.0, 0.1, 0.9)),
                                                         ("js", (20.0, 45.0, 0.8, 0.3))):
        _write_scored_run(tmp_path, method, {"bleu": bleu, "bleu_official": official, "r_cvg": r_cvg,
                                             "r_cvg_paper": r_cvg_paper},
                          {"bleu": "bleu_official"} if declared else None)
    store = load_store(tmp_path)
    side_by_side, agreement = comparison(store, summarise(store), "toy3", "ci", PUBLISHED)
    data = side_by_side.data.set_index(["model", "metric"])
    bleu_ours = "bleu_official" if declared else "bleu"
    assert data.loc[("js", "bleu"), "our_metric"] == bleu_ours
    assert data.loc[("js", "bleu"), "ours"] == (45.0 if declared else 20.0)
    assert data.loc[("js", "r_cvg"), "our_metric"] == "r_cvg_paper" and data.loc[("js", "r_cvg"), "ours"] == 0.3
    assert side_by_side.header == ["model", "BLEU paper", f"{'BLEU (official)' if declared else 'BLEU'} ours",
                                   "R_cvg↓ paper", "R_cvg (paper)↓ ours"]
    tau = agreement.data.set_index("metric")
    assert tau.loc["r_cvg", "our_metric"] == "r_cvg_paper" and tau.loc["r_cvg", "kendall_tau"] == pytest.approx(1.0)
    assert tau.loc["bleu", "kendall_tau"] == pytest.approx(1.0 if declared else -1.0)


def test_table_rows_leave_out_only_other_values_of_axes_with_their_own_table():
    from harness.reporting.summary import table_rows

    def line(model, n, **setting):
        label = model + (" (" + ", ".join(f"{k}={v}" for k, v in setting.items()) + ")" if setting else "")
        return {"task": "t", "profile": "ci", "model": model, "label": label, "n": n, "metric": "bleu",
                "setting": {"student.encoder_layers": None, "teacher_outputs_k": None, "method.beta": None,
                            "kd_train.lr": None, **setting}}

    summary = pd.DataFrame([
        line("teacher", 1),
        line("mle", 1, **{"student.encoder_layers": 2, "kd_train.lr": 1e-3, "teacher_outputs_k": 0}),
        line("mle", 3, **{"student.encoder_layers": 2, "kd_train.lr": 5e-4, "teacher_outputs_k": 0}),  # the anchor
        line("kl", 3, **{"student.encoder_layers": 1}),                          # Figure 2's
        line("kl", 3, **{"student.encoder_layers": 2}),
        line("js", 3, **{"student.encoder_layers": 2, "method.beta": 0.5}),      # another sweep: kept
        line("js", 3, **{"student.encoder_layers": 2, "method.beta": 0.85}),
        line("js", 1, **{"student.encoder_layers": 2, "teacher_outputs_k": 8}),  # the store table's
        line("tvd", 2, **{"student.encoder_layers": 2, "kd_train.lr": 1e-3}),    # a KD-only axis: kept
    ])
    kept = [label for label, _, _ in table_rows(summary, "t", "ci")]
    assert kept == ["teacher", "mle (student.encoder_layers=2, kd_train.lr=0.001, teacher_outputs_k=0)",
                    "mle (student.encoder_layers=2, kd_train.lr=0.0005, teacher_outputs_k=0)", "kl (student.encoder_layers=2)",
                    "js (student.encoder_layers=2, method.beta=0.5)", "js (student.encoder_layers=2, method.beta=0.85)",
                    "tvd (student.encoder_layers=2, kd_train.lr=0.001)"]


def test_a_model_shared_across_an_axis_is_one_row_with_its_own_seeds(tmp_path):
    """The pre-distilled student of seed 1 is shared by KD cells at two values of an axis (so the axis does not
    touch it), seed 2's only by a cell at one value: both are one row of n = 2, without the axis."""
    import json

    from harness.reporting.load import load_store
    from harness.reporting.summary import summarise

    def run(run_id, seed, k, pre_key, value):
        folder = tmp_path / "runs" / run_id
        folder.mkdir(parents=True)
        ident = {"run_id": run_id, "task": "toy", "method": "m1", "profile": "ci", "seed": seed}
        rows = [{**ident, "model": model, "split": "test", "metric": "acc", "value": v, "signature": "",
                 "stage_key": key, "variant": f"k={k}", "k": k}
                for model, key, v in (("pre", pre_key, value), ("m1", f"{run_id}-m1", value + 0.1))]
        pd.DataFrame(rows).to_parquet(folder / "metrics.parquet", index=False)
        pd.DataFrame(columns=["step", "epoch", "split", "name", "value"]).to_parquet(folder / "curves.parquet")
        (folder / "manifest.json").write_text(json.dumps({**ident, "config": {}, "wall_seconds": 1.0}))

    run("a", 1, 0, "pre-1", 0.5)
    run("b", 1, 8, "pre-1", 0.5)
    run("c", 2, 0, "pre-2", 0.7)
    lines = [r for r in summarise(load_store(tmp_path)).itertuples() if r.metric == "acc"]
    pre = [r for r in lines if r.label.startswith("pre")]
    assert len(pre) == 1 and pre[0].n == 2 and pre[0].mean == pytest.approx(0.6)
    assert pre[0].setting == {"k": None}
    assert sorted(r.setting["k"] for r in lines if r.label.startswith("m1")) == [0, 8]   # m1 keeps its axis


# --------------------------------------------------------------------------- report.html: contents and anchors
def _page_of(sections):
    from harness.reporting.html import page

    return page("Distillation report", "meta", sections)


def test_report_page_has_contents_linking_every_section_table_and_figure():
    import re

    findings = Table("findings_cpu", "The paper's findings, re-tested (cpu profile)", ["#", "verdict"],
                     [[Cell(text="1"), Cell(text="holds")]], "", pd.DataFrame())
    t2 = Table("table2_dart_cpu", "Table 2 — dart", ["model"], [[Cell(text="mle")]], "", pd.DataFrame())
    t2x = Table("table2_xsum_cpu", "Table 2 — xsum", ["model"], [[Cell(text="mle")]], "", pd.DataFrame())
    fig2 = Table("figure2_dart_cpu_x", "Figure 2 — dart", ["x"], [[Cell(text="1")]], "", pd.DataFrame())
    page = _page_of([("The paper's findings, re-tested — cpu profile", [findings]),
                     ("dart — cpu profile", [t2, ("figures/dots_dart_cpu.png", "dart (cpu profile): test metrics",
                                                  "dots_dart_cpu"),
                                             fig2, (f"figures/{fig2.name}.png", "dart (cpu profile): BLEU vs depth",
                                                    fig2.name)]),
                     ("xsum — cpu profile", [t2x]), ("dart — cpu profile", [])])      # a repeated heading
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))                                   # every anchor unique
    for expected in ("findings_cpu", "table2_dart_cpu", "figure-dots_dart_cpu", "table2_xsum_cpu", "contents",
                     "figure2_dart_cpu_x", "figure-figure2_dart_cpu_x",           # Figure 2's table and figure
                     "the-paper-s-findings-re-tested-cpu-profile", "dart-cpu-profile", "dart-cpu-profile-2"):
        assert expected in ids
    links = re.findall(r'href="#([^"]+)"', page)
    assert set(links) <= set(ids)                                      # no link to nowhere
    assert {"findings_cpu", "table2_dart_cpu", "figure-dots_dart_cpu", "table2_xsum_cpu", "dart-cpu-profile",
            "xsum-cpu-profile"} <= set(links)                          # every section, table and figure listed
    assert page.index('id="contents"') < page.index("<h2") < page.index('id="findings_cpu"') < page.index(
        'id="table2_dart_cpu"')                                        # contents, then the findings first

"""What a report row is and what it is called: one row per model, setting and data set (runs on other data are
never averaged, ranked or compared together), one label per row in every table, CSV and figure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from harness.reporting import findings as fd
from harness.reporting.build import build_report
from harness.reporting.load import load_store
from harness.reporting.summary import common_rows, summarise
from harness.reporting.tables import figure2, table2

INPUTS = 30
TASK = {"name": "toy6", "architecture": "encoder-decoder", "metrics": ["bleu"], "lower_is_better": [],
        "selection_metric": "bleu"}
LAYERS = "student.encoder_layers"


def write_run(root, method: str, seed: int, level: dict, data: str = "d-A", folder: str | None = None,
              layers: int = 2) -> str:
    """One run of the unregistered task "toy6" as the pipeline writes it: the teacher, pre-distill for a KD method,
    and the method's own model, each a model stage keyed by its data (``data``: the run's data identity;
    ``folder``: its ``--data-dir``, which metrics.parquet holds as a parameter column)."""
    run_id = f"toy6-{method}-{seed}-{layers}-{data}"
    path = root / "runs" / run_id
    path.mkdir(parents=True)
    ident = {"run_id": run_id, "task": "toy6", "method": method, "profile": "ci", "seed": seed}
    params = {LAYERS: layers, **({"data.source": "local", "data.data_dir": folder} if folder else {})}
    models = ["teacher"] + ([] if method in ("mle", "predistill") else ["predistill"]) + [method]
    rows, examples = [], []
    for model in models:
        key = f"{model}-{data}" + ("" if model == "teacher" else f"-{seed}-{layers}")
        spread = np.random.default_rng([seed, len(model), layers]).integers(-4, 5, INPUTS) / 4.0
        scores = level[model] + spread - spread.mean()                    # the mean is the level
        rows.append({**ident, "model": model, "split": "test", "metric": "bleu", "value": float(scores.mean()),
                     "signature": "mean", "stage_key": key, "variant": "", "higher_is_better": True, **params})
        examples.append(pd.DataFrame({"example_id": [f"x{i}" for i in range(INPUTS)], "references": [["r"]] * INPUTS,
                                      "hypothesis": ["h"] * INPUTS, "score_bleu": scores, "model": model}))
    pd.DataFrame(rows).to_parquet(path / "metrics.parquet", index=False)
    pd.concat(examples).assign(**ident).to_parquet(path / "examples.parquet", index=False)
    pd.DataFrame(columns=["step", "epoch", "split", "name", "value"]).to_parquet(path / "curves.parquet")
    manifest = {**ident, "task": TASK, "method": {"name": method, "params": {}}, "wall_seconds": 1.0,
                "config": {"data": {"source": "local" if folder else "embedded", "data_dir": folder}},
                "parameters": {k: v for k, v in params.items() if k.startswith("data.")},
                "data": {"identity": data, "key": f"key-{data}"}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return run_id


A = {"teacher": 40.0, "mle": 30.0, "predistill": 33.0, "kl": 35.0}
B = {"teacher": 10.0, "mle": 60.0, "predistill": 12.0, "kl": 13.0}   # far apart: pooled means would show it


# --------------------------------------------------------------------------- data sets apart
def test_runs_on_two_data_folders_are_rows_of_their_own_labelled_by_the_folder(tmp_path):
    """Folder A holds the full grid, folder B one MLE cell: B's MLE (and its teacher) are their own rows, named
    by the folder, ranked among B's rows only, and no finding compares A's pre-distill with B's MLE."""
    for seed in (1, 2, 3):
        for method in ("predistill", "kl"):
            write_run(tmp_path, method, seed, A, "d-A", "/data/A")
    write_run(tmp_path, "mle", 1, B, "d-B", "/data/B")
    store = load_store(tmp_path)
    assert "data.data_dir" not in store.axes               # where the files lay is no setting: their identity is
    summary = summarise(store)
    bleu = summary[summary["metric"] == "bleu"].set_index("label")
    assert set(bleu.index) == {"teacher", "predistill", "kl", "mle [data: B]", "teacher [data: B]"}
    assert bleu.loc["mle [data: B]", "mean"] == pytest.approx(B["mle"]) and bleu.loc["mle [data: B]", "n"] == 1
    assert bleu.loc["teacher", "mean"] == pytest.approx(A["teacher"]) and bleu.loc["teacher", "n"] == 1
    # the common rows (findings, comparisons, the overview) are A's alone
    assert common_rows(summary, "toy6-real", "ci") == {"teacher": "teacher", "predistill": "predistill", "kl": "kl"}
    claims = fd.findings(store, summary, "ci", n_samples=50)
    assert claims is None or not (claims.data["claim"] == "1").any()    # no MLE on A: nothing to compare
    # Table 2: every row, labelled; bold and ranks within each data set
    data = table2(store, summary, "toy6-real", "ci", baseline="predistill", n_samples=50).data
    data = data.set_index("row")
    assert [c for c in data.index] == ["teacher", "teacher [data: B]", "mle [data: B]", "predistill", "kl"]
    assert bool(data.loc["kl", "best"]) and not bool(data.loc["predistill", "best"])   # A's best
    # B's only student has one seed: exploratory, so not bold although it is its data set's best, and unranked
    assert not bool(data.loc["mle [data: B]", "best"]) and bool(data.loc["mle [data: B]", "exploratory"])
    assert data.loc["kl", "rank"] == 1 and data.loc["predistill", "rank"] == 2       # A's students only
    assert pd.isna(data.loc["mle [data: B]", "rank"]) and pd.isna(data.loc["mle [data: B]", "difference"])


def test_a_test_file_edited_in_place_splits_the_rows_it_changed(tmp_path):
    """Same folder, its test file edited between two seeds: the data identity changed, so the two MLE runs (and
    the two teachers) are not one row of n = 2 but one row on each data set, the second named by folder and id."""
    first = write_run(tmp_path, "mle", 1, A, "aaaaaaaa1111", "/data/A")
    write_run(tmp_path, "mle", 2, B, "bbbbbbbb2222", "/data/A")
    write_run(tmp_path, "kl", 2, B, "bbbbbbbb2222", "/data/A")
    store = load_store(tmp_path)
    summary = summarise(store)
    bleu = summary[summary["metric"] == "bleu"].set_index("label")
    assert (bleu["n"] == 1).all()                                      # nothing averaged over two data sets
    assert bleu.loc["mle [data: A aaaaaaaa]", "mean"] == pytest.approx(A["mle"])
    assert bleu.loc["mle", "mean"] == pytest.approx(B["mle"])          # the data set of most evaluations
    assert {line.replicates[0].run_id for line in summary.itertuples() if line.label == "mle [data: A aaaaaaaa]"} \
        == {first}
    assert "teacher [data: A aaaaaaaa]" in bleu.index and bleu.loc["teacher", "mean"] == pytest.approx(B["teacher"])


def test_the_report_writes_each_data_set_s_rows_with_their_label(tmp_path):
    for seed in (1, 2):
        write_run(tmp_path / "results", "mle", seed, A, "d-A", "/data/A")
        write_run(tmp_path / "results", "mle", seed, B, "d-B", "/data/B")
    write_run(tmp_path / "results", "kl", 1, A, "d-A", "/data/A")
    build_report(tmp_path / "results", tmp_path / "out", n_samples=20)
    rows = pd.read_csv(tmp_path / "out" / "summary.csv")
    mle = rows[(rows["model"] == "mle") & (rows["metric"] == "bleu")].set_index("row")
    assert mle.loc["mle", "n"] == 2 and mle.loc["mle", "mean"] == pytest.approx(A["mle"], abs=1)
    assert mle.loc["mle [data: B]", "n"] == 2 and mle.loc["mle [data: B]", "data"] == "d-B"
    md = (tmp_path / "out" / "tables" / "table2_toy6-real_ci.md").read_text()
    assert "| mle [data: B] | 2* |" in md and "[data: …]" in md      # two seeds: exploratory


# --------------------------------------------------------------------------- one label per row
def test_a_row_at_the_main_setting_is_called_by_its_model_everywhere(tmp_path):
    """kl ran at two encoder depths, engine (as MLE) at one: at the main depth both are their model's name in
    Table 2, its CSV, summary.csv and Figure 2; the other depth is named by it."""
    level = {"teacher": 40.0, "mle": 30.0, "predistill": 33.0, "kl": 35.0, "engine": 31.0}
    for seed in (1, 2):
        for method in ("mle", "engine", "kl"):
            write_run(tmp_path / "results", method, seed, level)
        write_run(tmp_path / "results", "kl", seed, level, layers=1)
    report = build_report(tmp_path / "results", tmp_path / "out", n_samples=20)
    table = report.tables["table2_toy6_ci"]
    shown = [row[0].text for row in table.rows]
    assert shown == ["teacher", "mle", "predistill", "engine", "kl"]
    assert list(dict.fromkeys(table.data["row"])) == shown                 # the CSV says what the table shows
    rows = pd.read_csv(tmp_path / "out" / "summary.csv")
    kl = rows[(rows["model"] == "kl") & (rows["metric"] == "bleu")]
    assert sorted(kl["row"]) == ["kl", f"kl ({LAYERS}=1)"]
    store = load_store(tmp_path / "results")
    fig = figure2(store, summarise(store), "toy6", "ci", LAYERS)
    assert set(fig.data["series"]) == {"kl", "predistill"} and set(fig.data["row"]) <= {"kl", f"kl ({LAYERS}=1)",
                                                                                      "predistill",
                                                                                      f"predistill ({LAYERS}=1)"}


def test_a_report_of_ci_runs_says_their_numbers_mean_nothing(tmp_path):
    """The ci profile checks the plumbing only: its report says so at the top, as `harness run` does under its
    table (one note, from the profile's entry in PROFILE_NOTES)."""
    from harness.config import PROFILE_NOTES

    for seed in (1, 2, 3):
        write_run(tmp_path / "results", "kl", seed, A, "d-A", "/data/A")
    report = build_report(tmp_path / "results", tmp_path / "report")
    text = (report.out / "report.md").read_text()
    assert f"Note: {PROFILE_NOTES['ci']}." in text.splitlines()[2]
    import html

    assert html.escape(PROFILE_NOTES["ci"]) in (report.out / "report.html").read_text()


def test_a_report_without_figures_writes_the_same_tables(tmp_path):
    """``--no-figures``: no figure drawn or named on the page, every table as in the full report."""
    for seed in (1, 2):
        for method in ("mle", "kl"):
            write_run(tmp_path / "results", method, seed, {"teacher": 40.0, "mle": 30.0, "predistill": 33.0, "kl": 35.0})
    full = build_report(tmp_path / "results", tmp_path / "full", n_samples=20)
    bare = build_report(tmp_path / "results", tmp_path / "bare", n_samples=20, figures=False)
    assert full.figures and not bare.figures and not (tmp_path / "bare" / "figures").exists()
    assert "figures/" not in (tmp_path / "bare" / "report.md").read_text()
    assert sorted(bare.tables) == sorted(full.tables)
    for name in bare.tables:
        assert (tmp_path / "bare" / "tables" / f"{name}.csv").read_bytes() == \
            (tmp_path / "full" / "tables" / f"{name}.csv").read_bytes()

"""The teacher-output store in the run folders and the report: each run's manifest carries its store stage's
build info (bytes per stored token), and the report's store table compares runs that differ only in
``teacher_outputs_k`` with their k = 0 run (paired bootstrap over test inputs).

The runs: DART × tvd × seed 42 at k = 0 (no store), k = 8, and k = 100000 (≥ the vocabulary: exact), ci profile.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from harness.config import resolve_config
from harness.pipeline import Pipeline
from harness.reporting.build import build_report
from harness.reporting.stats import bootstrap_seed, reference_streams
from harness.store.read import read_manifest
from harness.store.runs import TIMING_METRICS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report_store")]   # its fixtures built once, on one worker
EXACT = 100000      # ≥ any ci vocabulary
N_SAMPLES = 200
METRICS = ["bleu", "chrf", "ter", "bleu_official"]    # DART's Table 2 metrics


@pytest.fixture(scope="module")
def ksweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("store-results")
    outcomes = {}
    for k in (0, 8, EXACT):
        sets = [("results_dir", str(root)), ("teacher_outputs_k", str(k))]
        outcomes[k] = Pipeline(resolve_config("dart", "tvd", "ci", seed=42, sets=sets)).run()
    return root, outcomes


def store_stages(manifest: dict) -> dict[str, dict]:
    return {label: entry for label, entry in manifest["stages"].items() if entry["stage"] == "teacher_outputs"}


def test_the_manifest_carries_the_store_info(ksweep):
    root, outcomes = ksweep
    assert not store_stages(outcomes[0].manifest)
    for k in (8, EXACT):
        manifest = json.loads((outcomes[k].path / "manifest.json").read_text())
        (label, entry), = store_stages(manifest).items()
        assert label == "teacher_outputs/teacher_offline"
        info = entry["info"]
        record = json.loads((root / "cache" / "teacher_outputs" / entry["key"] / "stage.json").read_text())
        assert info == record["info"]
        assert info["k"] == min(k, info["vocab_size"]) and info["positions"] > 0
        assert info["bytes_per_token"] == pytest.approx(info["bytes"] / info["positions"]) and info["bytes"] > 0
    # every other stage says what its build recorded too (a training stage its steps)
    assert outcomes[8].manifest["stages"]["method"]["info"]["steps"] > 0


def test_a_manifest_written_before_stages_carried_their_info_reads_as_empty_info(ksweep, tmp_path):
    _, outcomes = ksweep
    manifest = json.loads((outcomes[8].path / "manifest.json").read_text())
    for entry in manifest["stages"].values():
        del entry["info"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    read = read_manifest(tmp_path)
    assert read["stages"].keys() == manifest["stages"].keys()
    assert all(entry["info"] == {} for entry in read["stages"].values())
    assert read_manifest(outcomes[8].path)["stages"]["teacher_outputs/teacher_offline"]["info"]["bytes"] > 0


# --------------------------------------------------------------------------- the report's table
@pytest.fixture(scope="module")
def report(ksweep, tmp_path_factory):
    root, _ = ksweep
    return build_report(root, tmp_path_factory.mktemp("store-report"), baseline=None, n_samples=N_SAMPLES, figures=False)


def table_rows(report) -> pd.DataFrame:
    data = pd.read_csv(report.out / "tables" / "store_dart_ci.csv", keep_default_na=False, na_values=[""])
    return data.set_index(["k", "metric"])


def own_metrics(outcome) -> dict[str, float]:
    """The tvd model's test metrics, but its decoding speed (wall-clock dependent)."""
    metrics = pd.read_parquet(outcome.path / "metrics.parquet")
    own = metrics[(metrics["model"] == "tvd") & (metrics["split"] == "test") & ~metrics["metric"].isin(TIMING_METRICS)]
    return dict(zip(own["metric"], own["value"]))


def test_the_report_has_the_store_table_in_every_format(report):
    for suffix in ("md", "tex", "csv"):
        assert (report.out / "tables" / f"store_dart_ci.{suffix}").stat().st_size > 0
    md = (report.out / "tables" / "store_dart_ci.md").read_text()
    assert "### Teacher-output store — dart (ci profile)" in (report.out / "report.md").read_text()
    assert 'id="store_dart_ci"' in (report.out / "report.html").read_text()
    lines = [line for line in md.splitlines() if line.startswith("| tvd |")]
    assert [line.split(" | ")[1] for line in lines] == ["off (exact teacher)", f"{EXACT} (≥ V = 300: exact)", "8"]
    assert lines[0].count("reference") == len(METRICS)
    assert r"$\Delta$ chrF" in (report.out / "tables" / "store_dart_ci.tex").read_text()


def test_bytes_per_token_are_the_manifests(ksweep, report):
    _, outcomes = ksweep
    data = table_rows(report)
    assert data.loc[(0, "chrf"), "bytes_per_token"] != data.loc[(0, "chrf"), "bytes_per_token"]   # NaN: no store
    for k in (8, EXACT):
        info = outcomes[k].manifest["stages"]["teacher_outputs/teacher_offline"]["info"]
        assert data.loc[(k, "chrf"), "bytes_per_token"] == pytest.approx(info["bytes_per_token"])
        assert info["bytes_per_token"] > 0
        assert data.loc[(k, "chrf"), "sources"] == "teacher_offline"
    # exact: float32 log-probabilities of the whole vocabulary; k = 8: a small fraction of that
    assert data.loc[(EXACT, "chrf"), "bytes_per_token"] > 4 * 300
    assert data.loc[(8, "chrf"), "bytes_per_token"] < data.loc[(EXACT, "chrf"), "bytes_per_token"] / 10


def test_an_exact_store_differs_from_the_live_teacher_by_exactly_zero(ksweep, report):
    _, outcomes = ksweep
    assert own_metrics(outcomes[EXACT]) == own_metrics(outcomes[0])      # the store at k ≥ V is exact
    data = table_rows(report)
    for metric in METRICS:
        row = data.loc[(EXACT, metric)]
        assert row["reference_k"] == 0 and not row["reference"] and row["n"] == 1
        assert row["difference"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0, metric
        assert data.loc[(0, metric), "reference"]


def test_a_small_k_row_is_the_paired_bootstrap_of_its_difference(ksweep, report):
    _, outcomes = ksweep
    small, live = own_metrics(outcomes[8]), own_metrics(outcomes[0])
    data = table_rows(report)
    for metric in METRICS:
        assert data.loc[(8, metric), "difference"] == pytest.approx(small[metric] - live[metric], abs=1e-9)
    moved = [m for m in METRICS if data.loc[(8, m), "ci_high"] > data.loc[(8, m), "ci_low"]]
    assert moved, "k = 8 changed no metric's interval: the comparison says nothing"
    # brute force on chrF: sacreBLEU's corpus chrF of both runs' outputs on the same drawn inputs
    from sacrebleu.metrics import CHRF

    frames = [pd.read_parquet(outcomes[k].path / "examples.parquet") for k in (8, 0)]
    frames = [f[f["model"] == "tvd"].reset_index(drop=True) for f in frames]
    assert frames[0]["example_id"].tolist() == frames[1]["example_id"].tolist()
    streams = reference_streams([list(r) for r in frames[0]["references"]])
    n = len(frames[0])
    draws = np.random.default_rng(bootstrap_seed()).integers(n, size=(N_SAMPLES, n))

    def chrf(frame, draw):
        hypotheses = [frame["hypothesis"][i] for i in draw]
        return CHRF().corpus_score(hypotheses, [[s[i] for i in draw] for s in streams]).score

    diffs = [chrf(frames[0], d) - chrf(frames[1], d) for d in draws]
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert data.loc[(8, "chrf"), "ci_low"] == pytest.approx(low, abs=1e-9)
    assert data.loc[(8, "chrf"), "ci_high"] == pytest.approx(high, abs=1e-9)


def test_runs_without_store_info_still_get_the_table(ksweep, tmp_path):
    """Runs written before manifests carried the build info: no bytes per token, no vocabulary size (the
    exact k is not named so), the k = 0 run still the reference."""
    root, _ = ksweep
    shutil.copytree(root / "runs", tmp_path / "runs")
    for manifest_file in (tmp_path / "runs").glob("*/manifest.json"):
        manifest = json.loads(manifest_file.read_text())
        for entry in manifest["stages"].values():
            del entry["info"]
        manifest_file.write_text(json.dumps(manifest))    # the manifest is not among the checksummed files
    report = build_report(tmp_path, tmp_path / "report", baseline=None, n_samples=20, figures=False)
    data = table_rows(report)
    assert data["bytes_per_token"].isna().all()
    assert data.loc[(EXACT, "chrf"), "difference"] == 0 and data.loc[(EXACT, "chrf"), "reference_k"] == 0
    assert f"| tvd | {EXACT} | 1 | — |" in (report.out / "tables" / "store_dart_ci.md").read_text()


def test_no_table_without_a_sweep(ksweep, tmp_path):
    root, outcomes = ksweep
    (tmp_path / "runs").mkdir()
    shutil.copytree(outcomes[8].path, tmp_path / "runs" / outcomes[8].path.name)
    report = build_report(tmp_path, tmp_path / "report", baseline=None, n_samples=20, figures=False)
    assert "store_dart_ci" not in report.tables

"""Every method end to end on the ``ci`` profile (at the ci grid's small splits: what is tested here is the plumbing,
not the sizes): stages, cache reuse, parquet rows, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import CI_GRID_SET_ARGS, CI_GRID_SETS, ci_grid_config
from harness.pipeline import Pipeline

pytestmark = pytest.mark.xdist_group("run_ci")   # its fixtures built once, on one worker

METHODS = ["mle", "predistill", "seqkd", "engine", "kl", "rkl", "js", "tvd"]


def run(results_dir, method, **overrides):
    sets = [("results_dir", str(results_dir))] + [(k, str(v)) for k, v in overrides.items()]
    return Pipeline(ci_grid_config("dart", method, sets=sets)).run()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    return root, {m: run(root, m) for m in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_writes_its_rows(results, method):
    _, outcomes = results
    outcome = outcomes[method]
    metrics = pd.read_parquet(outcome.path / "metrics.parquet")
    models = set(metrics["model"])
    assert {"teacher", method} <= models
    if method not in ("mle", "predistill"):
        assert "predistill" in models
    for model in models:
        got = set(metrics.loc[metrics["model"] == model, "metric"])
        assert {"bleu", "chrf", "ter", "r_llh", "r_cvg"} <= got
    assert metrics["value"].notna().all()
    assert (metrics["run_id"] == outcome.run_id).all() and (metrics["method"] == method).all()
    bleu_sig = metrics.loc[metrics["metric"] == "bleu", "signature"].iloc[0]
    assert bleu_sig.startswith("nrefs:")
    examples = pd.read_parquet(outcome.path / "examples.parquet")
    n_test = len(examples[examples["model"] == method])
    assert n_test == int(CI_GRID_SETS["data.test_size"])
    assert {"hypothesis", "references", "score_bleu", "teacher_nll"} <= set(examples.columns)
    curves = pd.read_parquet(outcome.path / "curves.parquet")
    assert (curves["name"] == "loss").any()
    manifest = json.loads((outcome.path / "manifest.json").read_text())
    assert manifest["config"]["method"] == method and manifest["seeds"]["method"] == 42
    assert manifest["packages"]["torch"] and "commit" in manifest["git"]
    assert set(manifest["stages"]) >= {"tokenizer", "teacher", "method"}


def test_methods_share_the_cached_upstream_stages(results):
    _, outcomes = results
    first, later = outcomes["mle"].manifest["stages"], outcomes["tvd"].manifest["stages"]
    assert not first["teacher"]["reused"]
    assert later["teacher"]["reused"] and later["teacher"]["key"] == first["teacher"]["key"]
    assert later["predistill"]["reused"]                      # built by the predistill run before it
    assert later["pseudo_labels"]["reused"]                   # built by seqkd
    assert not later["method"]["reused"]
    js = outcomes["js"].manifest["stages"]
    assert js["predistill"]["key"] == later["predistill"]["key"]


def test_same_seed_same_numbers(results, tmp_path):
    _, outcomes = results
    again = run(tmp_path / "fresh", "tvd")      # nothing cached: every stage rebuilt
    assert not any(s["reused"] for s in again.manifest["stages"].values())
    a = outcomes["tvd"].metrics.sort_values(["model", "metric"]).reset_index(drop=True)
    b = again.metrics.sort_values(["model", "metric"]).reset_index(drop=True)
    keep = ~a["metric"].isin(["decode_tokens_per_s"])
    pd.testing.assert_series_equal(a.loc[keep, "value"], b.loc[keep, "value"])


def test_another_seed_changes_the_method_stage_only(results):
    root, outcomes = results
    other = run(root, "tvd", seed=7)
    stages = other.manifest["stages"]
    assert stages["teacher"]["reused"] and stages["predistill"]["reused"]
    assert not stages["method"]["reused"]
    assert other.run_id != outcomes["tvd"].run_id


def test_cli_run_prints_the_table_and_says_what_it_reused(results, harness_cli):
    root, _ = results
    proc = harness_cli("run", "--task", "dart", "--method", "seqkd", "--profile", "ci", *CI_GRID_SET_ARGS,
                       "--results-dir", root)
    assert proc.code == 0, proc.err
    assert "teacher" in proc.out and "predistill" in proc.out and "seqkd" in proc.out
    assert "BLEU" in proc.out and "R_cvg" in proc.out
    assert "reused from cache:" in proc.out and "teacher" in proc.out.split("reused from cache:")[1]
    assert "reusing cached teacher" in proc.err


def test_cli_run_threads_sets_torch_threads_for_the_stages_it_builds(results, harness_cli):
    """The tests run with one thread (OMP_NUM_THREADS=1): --threads 2 must reach the stage it builds."""
    root, _ = results
    proc = harness_cli("run", "--task", "dart", "--method", "mle", "--profile", "ci", *CI_GRID_SET_ARGS, "--seed", "7",
                       "--threads", "2", "--results-dir", root)
    assert proc.code == 0, proc.err
    folder = proc.out.strip().splitlines()[-1].removeprefix("results: ")
    stages = json.loads((Path(folder) / "manifest.json").read_text())["stages"]
    assert not stages["method"]["reused"] and stages["method"]["host"]["torch_threads"] == 2
    assert stages["teacher"]["reused"] and stages["teacher"]["host"]["torch_threads"] == 1


def test_corrupted_cache_entry_is_rebuilt(results, capfd):
    root, outcomes = results
    teacher_dir = root / "cache" / "teacher" / outcomes["tvd"].manifest["stages"]["teacher"]["key"]
    weights = next(teacher_dir.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated file
    again = run(root, "mle")
    assert not again.manifest["stages"]["teacher"]["reused"]
    assert "does not match the checksums" in capfd.readouterr().err


def test_a_run_that_dies_while_writing_leaves_no_run_folder(results, monkeypatch, tmp_path):
    """Results go to a temporary folder renamed into place only when every file is written."""
    from harness.store import runs as results_module

    root, _ = results
    def fail(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(results_module, "write_json", fail)   # the manifest is the last file written
    with pytest.raises(OSError, match="No space"):
        run(root, "kl", seed=11)
    runs = root / "runs"
    assert not any(p.name.startswith("dart-kl-ci-seed11") for p in runs.iterdir())
    assert not any(".tmp-" in p.name for p in runs.iterdir())


def test_the_plan_names_the_stages_and_keys_the_run_used(results):
    """graph.py's plan, made without data, agrees with what the run built (labels, stages, keys)."""
    from harness.pipeline.graph import plan_for

    _, outcomes = results
    for method, outcome in outcomes.items():
        cfg = ci_grid_config("dart", method, sets=[("results_dir", str(outcome.path.parent.parent))])
        plan = plan_for(cfg)
        used = {label: (s["stage"], s["key"]) for label, s in outcome.manifest["stages"].items()}
        planned = {label: (plan[label].stage, plan[label].key) for label in plan.labels()}
        assert planned == used, method
        assert set(plan.evaluated) == set(pd.read_parquet(outcome.path / "metrics.parquet")["model"])


def test_a_run_describes_its_task_method_and_metric_directions(results):
    _, outcomes = results
    outcome = outcomes["js"]
    manifest = json.loads((outcome.path / "manifest.json").read_text())
    assert manifest["task"] == {"name": "dart", "architecture": "encoder-decoder", "metrics": ["bleu", "chrf", "ter", "bleu_official"],
                                "lower_is_better": ["ter"], "selection_metric": "bleu",
                                "paper_metrics": {"bleu": "bleu_official"}}
    assert manifest["method"]["name"] == "js" and manifest["method"]["params"]["beta"] == 0.85
    metrics = pd.read_parquet(outcome.path / "metrics.parquet")
    lower = set(metrics.loc[~metrics["higher_is_better"], "metric"])
    assert lower == {"ter", "r_llh", "r_cvg", "r_llh_paper", "r_cvg_paper", "tvd_token"}


def test_a_store_written_before_runs_described_themselves_still_reads(results, tmp_path):
    """No ``higher_is_better`` column, no ``task``/``method`` in the manifest: the readers fill them from the
    registries, or for a task no longer registered, with {"ter", "r_llh", "r_cvg"} lower is better."""
    import shutil

    from harness.store import load_manifests, load_metrics, read_manifest

    _, outcomes = results
    for name, task in (("known", "dart"), ("gone", "a_task_not_registered")):
        folder = tmp_path / name / "runs" / outcomes["kl"].run_id
        shutil.copytree(outcomes["kl"].path, folder)
        metrics = pd.read_parquet(folder / "metrics.parquet").drop(columns=["higher_is_better"]).assign(task=task)
        metrics.to_parquet(folder / "metrics.parquet", index=False)
        manifest = json.loads((folder / "manifest.json").read_text())
        for key in ("task", "method", "checksums"):
            manifest.pop(key)
        manifest["task"] = task
        manifest["method"] = "kl"
        manifest["config"]["task"] = task
        (folder / "manifest.json").write_text(json.dumps(manifest))

        read = load_metrics(tmp_path / name)
        assert len(read) == len(metrics)
        directions = dict(zip(read["metric"], read["higher_is_better"]))
        assert directions["ter"] is False and directions["r_cvg"] is False and directions["bleu"] is True
        described = read_manifest(folder)
        assert described["task"]["name"] == task and described["method"]["name"] == "kl"
        assert described["task"]["lower_is_better"] == ["ter"]
        assert list(load_manifests(tmp_path / name)["task"]) == [task]


def test_the_teacher_s_per_input_teacher_dist_and_its_further_decodings(results):
    """The teacher's evaluation writes its TeacherDist terms per input (their mean is the metric), and with
    eval_decode_seeds (sampled test decoding) its further decodings: hypotheses per input and each decoding's
    scores, the first the reported one; training stages are reused."""
    root, outcomes = results
    teacher = pd.read_parquet(outcomes["mle"].path / "examples.parquet").query("model == 'teacher'")
    metrics = outcomes["mle"].metrics.query("model == 'teacher'").set_index("metric")["value"]
    assert teacher["score_teacher_dist"].mean() == pytest.approx(metrics["teacher_dist"])
    assert "decode_hypotheses" not in teacher   # off by default
    assert "decodings" not in outcomes["mle"].manifest["stages"]["evaluation/teacher"]["info"]
    thrice = run(root, "mle", eval_decode_seeds=3, **{"eval_decode.do_sample": True, "eval_decode.num_beams": 1})
    stages = thrice.manifest["stages"]
    assert all(stages[label]["reused"] for label in ("teacher", "method"))
    decodings = stages["evaluation/teacher"]["info"]["decodings"]
    first = thrice.metrics.query("model == 'teacher'").set_index("metric")["value"]
    assert len(decodings["bleu"]) == 3 and decodings["bleu"][0] == pytest.approx(first["bleu"])
    examples = pd.read_parquet(thrice.path / "examples.parquet").query("model == 'teacher'")
    assert all(len(h) == 2 for h in examples["decode_hypotheses"])

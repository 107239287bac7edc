"""The paper's risks beside ours: per-sentence means on sampled outputs (``r_llh_paper``, ``r_cvg_paper``), and
the evaluation stage that writes them with ``teacher_dist_paper`` (ci cells)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from conftest import ci_grid_config
from harness.config import resolve_config
from harness.evaluate import per_sentence, per_token
from harness.pipeline.graph import plan_for, run_id


def test_per_sentence_and_per_token_means_by_hand():
    # sentence 1: NLL 1.0 over 1 token; sentence 2: NLL 6.0 over 2 tokens
    pairs = [(1.0, 1), (6.0, 2)]
    assert per_token(pairs) == pytest.approx(7.0 / 3.0)          # (1 + 6) / (1 + 2): every token weighs the same
    assert per_sentence(pairs) == pytest.approx(2.0)             # (1/1 + 6/2) / 2: every sentence weighs the same


def test_the_risk_sampler_keys_the_evaluations_only():
    base = resolve_config("dart", "tvd", "ci")
    other = resolve_config("dart", "tvd", "ci", sets=[("risk_sampling.top_k", "5")])
    assert base.risk_sampling == dataclasses.replace(other.risk_sampling, top_k=None)
    first, second = plan_for(base), plan_for(other)
    changed = {label for label in first.labels() if first[label].key != second[label].key}
    assert changed and changed == {label for label in first.labels() if first[label].stage == "evaluation"}


def test_the_paper_profile_samples_the_dialogue_risks_as_its_test():
    cfg = resolve_config("commonsense_dialogue", "js", "paper")
    assert cfg.risk_sampling == cfg.eval_decode       # chat/scripts/run_calc_ppl.sh scores the test outputs
    generic = resolve_config("dart", "js", "ci")
    assert generic.risk_sampling.do_sample and generic.risk_sampling.num_beams == 1
    assert generic.risk_sampling.top_k is None and generic.risk_sampling.top_p is None   # ancestral
    assert generic.risk_sampling.max_new_tokens == generic.eval_decode.max_new_tokens


def cell(ci_grid, task: str):
    """The rows of ``task``'s MLE cell of the session's ci grid (a ci cell; its evaluations are the teacher's and
    MLE's)."""
    root, _ = ci_grid
    folder = root / "runs" / run_id(ci_grid_config(task, "mle"))
    return pd.read_parquet(folder / "metrics.parquet"), pd.read_parquet(folder / "examples.parquet")


@pytest.mark.slow
def test_the_evaluation_stage_writes_the_papers_risks_and_teacher_dist(ci_grid):
    metrics, examples = cell(ci_grid, "dart")
    value = {(r.model, r.metric): r.value for r in metrics.itertuples()}
    higher = dict(zip(metrics["metric"], metrics["higher_is_better"]))
    for model in ("teacher", "mle"):
        rows = examples[examples["model"] == model]
        by_hand = (rows["risk_teacher_nll"] / rows["risk_n_tokens"]).mean()
        assert value[(model, "r_llh_paper")] == pytest.approx(by_hand, rel=1e-9)
        assert (rows["risk_n_tokens"] == rows["risk_sample_tokens"].map(len)).all()
        assert value[(model, "r_llh")] == pytest.approx(rows["teacher_nll"].sum() / rows["n_tokens"].sum())
    # the teacher's coverage of its own samples is its likelihood of them
    assert value[("teacher", "r_cvg_paper")] == pytest.approx(value[("teacher", "r_llh_paper")])
    assert 0.0 < value[("teacher", "teacher_dist_paper")] <= 100.0 and ("mle", "teacher_dist_paper") not in value
    # a student's token-level fidelity to the teacher; none for the teacher itself
    assert 0.0 <= value[("mle", "tvd_token")] <= 1.0 and ("teacher", "tvd_token") not in value
    assert value[("mle", "acceptance")] == pytest.approx(1.0 - value[("mle", "tvd_token")])
    assert not higher["tvd_token"] and higher["acceptance"]
    assert not higher["r_llh_paper"] and not higher["r_cvg_paper"] and higher["teacher_dist_paper"]


@pytest.mark.slow
def test_dialogue_risks_score_the_sampled_test_outputs(ci_grid):
    """Its risk sampler is its test sampler, seeded as the evaluation: the risk samples are the test outputs."""
    _, examples = cell(ci_grid, "commonsense_dialogue")
    for model, rows in examples.groupby("model"):
        assert [list(t) for t in rows["risk_sample_tokens"]] == [list(t) for t in rows["output_tokens"]], model

"""Only a stage that samples prefixes online keys the online sampling (nothing trains here)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from harness.config import parse_sets, resolve_config
from harness.pipeline.graph import plan_for, run_id
from harness.registry import METHODS, TASKS

ABLATION = "online_sampling.no_repeat_ngram_size=3"


def _cfg(task, method, *pairs, profile="cpu"):
    return resolve_config(task, method, profile, sets=parse_sets(pairs))


def test_a_sampling_ablation_keeps_the_pre_distilled_student_and_rekeys_the_sampler():
    base, ablation = plan_for(_cfg("dart", "engine")), plan_for(_cfg("dart", "engine", ABLATION))
    assert base["predistill"].key == ablation["predistill"].key          # never samples: reused
    assert base["method"].key != ablation["method"].key                  # ENGINE's greedy prefixes keep the size
    assert ablation["method"].config["sampling"]["no_repeat_ngram_size"] == 3
    assert run_id(_cfg("dart", "engine")) != run_id(_cfg("dart", "engine", ABLATION))


@pytest.mark.parametrize("method", ["mle", "predistill", "seqkd", "wordkd"])
def test_a_method_that_never_samples_keeps_its_key(method):
    base, ablation = plan_for(_cfg("dart", method)), plan_for(_cfg("dart", method, ABLATION))
    assert {s.label: s.key for s in base.specs} == {s.label: s.key for s in ablation.specs}


@pytest.mark.parametrize("method", ["kl", "rkl", "js", "tvd"])
def test_a_method_that_samples_is_rekeyed(method):
    base, ablation = plan_for(_cfg("dart", method)), plan_for(_cfg("dart", method, ABLATION))
    assert base["method"].key != ablation["method"].key and base["predistill"].key == ablation["predistill"].key


@pytest.mark.parametrize("method, params, samples", [
    ("js", ["method.beta=0"], False),                    # all weight on the offline outputs
    ("js", ["method.beta=1"], True),
    ("gkd", ["method.lmbda=0"], False),                  # supervised prefixes only
    ("gkd", ["method.lmbda=0", "method.off_policy=teacher_sample"], True),
    ("js_exact", ["method.beta=0", "method.teacher_source=teacher_sample"], True),
    ("js_exact", ["method.beta=0"], False),
])
def test_parameters_that_switch_sources_decide_what_is_keyed(method, params, samples):
    base, ablation = plan_for(_cfg("dart", method, *params)), plan_for(_cfg("dart", method, *params, ABLATION))
    assert (base["method"].key != ablation["method"].key) == samples


@pytest.mark.parametrize("profile", ["ci", "cpu", "paper"])
def test_at_the_defaults_every_stage_keys_the_cells_own_sampling(profile):
    """So keys made before the rule (which keyed every stage with the cell's sampling) stay valid at the
    defaults (a run made with ``--set online_sampling.*`` gets the new keys for the stages that never sample)."""
    for task in TASKS.names():
        for method in METHODS.names():
            cfg = resolve_config(task, method, profile, check=False)
            for spec in plan_for(cfg).specs:
                if spec.stage == "student":
                    assert spec.config["sampling"] == asdict(cfg.online_sampling), (task, method, spec.label)

"""Issue 26's paper-fidelity settings (BART's ``<s>``: tests/test_pretrained.py; DART's merged test split:
tests/test_dart_data.py).

* ``teacher_mode``: the teacher's mode while it guides a student: eval by default, train as the reference's
  PyTorch Lightning 1.0.4 leaves it (its dropout on in every logit and sample); keyed into exactly the stages a
  teacher guides.
* ENGINE's ``max_source_tokens``: the reference's WMT ENGINE trains and validates on sources cut at 128 tokens.
"""

from __future__ import annotations

import pytest
import torch
from conftest import CI_GRID_SETS

import harness.train as training
from harness.config import ModelConfig, TrainConfig, resolve_config
from harness.errors import HarnessError
from harness.pipeline.graph import plan_for, run_id
from harness.store.labels import METHOD, PREDISTILL, TEACHER, TOKENIZER
from harness.testing import make_method, tiny_batch, tiny_models


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_teacher_guides_the_student_in_the_declared_mode(mode, monkeypatch):
    """During every step the teacher is in ``mode``: in train mode its dropout makes two passes over the same
    prefixes differ, in eval mode they are equal; after training it is back in eval mode."""
    config = ModelConfig(d_model=16, encoder_layers=2, decoder_layers=2, heads=2, ffn_dim=32, dropout=0.3)
    student, teacher, layer_map, _ = tiny_models(seed=1, config=config)
    split, _ = tiny_batch(student.tokenizer)
    seen = []
    step = training.method_loss

    def watched(method, student_lm, teacher_lm, batch, *args, **kwargs):
        with torch.no_grad():
            enc = teacher_lm.encode(batch.source_ids, batch.source_mask)
            twice = [teacher_lm.forward(enc, batch.target).logits for _ in range(2)]
        seen.append((teacher_lm.model.training, not torch.equal(*twice)))
        return step(method, student_lm, teacher_lm, batch, *args, **kwargs)

    monkeypatch.setattr(training, "method_loss", watched)
    training.train(student, make_method("kl"), split, TrainConfig(epochs=2, batch_size=2, evals_per_epoch=0),
                   teacher=teacher, layer_map=layer_map, teacher_mode=mode)
    assert seen and all(s == (mode == "train", mode == "train") for s in seen), seen
    assert not teacher.model.training


def test_teacher_mode_keys_the_stages_a_teacher_guides_and_no_other():
    """Pre-distillation and a KD method are trained anew; the tokenizer, the teacher, its evaluation and a
    student without a teacher (MLE) are not; the run is another run."""
    for method, changed in (("kl", {PREDISTILL, METHOD}), ("mle", set())):
        default = resolve_config("dart", method, "ci")
        dropout = resolve_config("dart", method, "ci", sets=[("teacher_mode", "train")])
        before, after = plan_for(default).keys(), plan_for(dropout).keys()
        differ = {label for label in before if before[label] != after[label]}
        assert {label for label in differ if not label.startswith("evaluation/")} == changed, (method, differ)
        assert TOKENIZER not in differ and TEACHER not in differ and "evaluation/teacher" not in differ
        assert run_id(default) != run_id(dropout)


def test_the_teacher_output_store_cannot_carry_dropout():
    with pytest.raises(HarnessError, match="teacher_mode=train: .*teacher_outputs_k=0"):
        resolve_config("dart", "kl", "ci", sets=[("teacher_mode", "train"), ("teacher_outputs_k", "8")])


def test_the_paper_profile_runs_the_teacher_in_train_mode_and_the_others_in_eval():
    for task in ("dart", "xsum", "wmt16_en_ro", "commonsense_dialogue"):
        assert resolve_config(task, "js", "paper").teacher_mode == "train"
        assert resolve_config(task, "js", "cpu").teacher_mode == "eval"


# ---------------------------------------------------------------- ENGINE's source cap

def test_a_source_cap_tokenises_the_sources_again_and_keeps_the_rest():
    from harness.data import tokenize, with_source_cap

    student, _, _, _ = tiny_models(seed=0)
    split, _ = tiny_batch(student.tokenizer)
    capped = with_source_cap(split, student.tokenizer, 4)
    assert capped.sources == tokenize(student.tokenizer, [e.source for e in split.examples], 4)[0]
    assert all(len(s) <= 4 and s[-1] == student.eos_id for s in capped.sources)
    assert capped.truncated_sources == sum(len(s) > 4 for s in split.sources) > 0
    assert (capped.targets, capped.teacher_outputs, capped.examples) == (split.targets, split.teacher_outputs,
                                                                         split.examples)


def test_engine_trains_and_validates_on_capped_sources_and_nothing_else_does(tmp_path, monkeypatch):
    """`method.max_source_tokens` cuts the sources of ENGINE's training rows and validation inputs; the
    pre-distilled student it starts from is the one without the cap (its key unchanged)."""
    import harness.pipeline.stages as stages
    from harness.pipeline import Pipeline

    seen = {}
    train, validator = stages.train, stages.validator

    def watched_train(lm, method, data, schedule, **kwargs):
        seen.setdefault(kwargs["desc"], {})["train"] = max(len(s) for s in data.sources)
        return train(lm, method, data, schedule, **kwargs)

    def watched_validator(spec, inputs, context, val=None):
        seen.setdefault("validation", []).append(max(len(s) for s in (val or inputs.splits["validation"]).sources))
        return validator(spec, inputs, context, val)

    monkeypatch.setattr(stages, "train", watched_train)
    monkeypatch.setattr(stages, "validator", watched_validator)
    sets = [*CI_GRID_SETS.items(), ("results_dir", str(tmp_path)), ("method.max_source_tokens", "6")]
    Pipeline(resolve_config("dart", "engine", "ci", sets=sets)).run()
    assert seen[METHOD]["train"] == 6 < seen[PREDISTILL]["train"]
    assert seen["validation"][-1] == 6 < seen["validation"][0]
    capped, plain = plan_for(resolve_config("dart", "engine", "ci", sets=sets)), plan_for(
        resolve_config("dart", "engine", "ci", sets=sets[:-1]))
    assert capped[PREDISTILL].key == plain[PREDISTILL].key and capped[METHOD].key != plain[METHOD].key


def test_the_wmt_paper_recipe_caps_engine_only():
    assert resolve_config("wmt16_en_ro", "engine", "paper").method_params["max_source_tokens"] == 128
    assert resolve_config("wmt16_en_ro", "engine", "cpu").method_params["max_source_tokens"] is None
    assert resolve_config("dart", "engine", "paper").method_params["max_source_tokens"] is None


# ---------------------------------------------------------------- run ids made before the settings

def test_the_settings_at_their_defaults_leave_the_run_ids_as_they_were():
    """The ids of these cells as the code before the fidelity settings computed them (commit 1bd2e52): runs
    recorded then are still found. Set away from their defaults, the settings make other runs."""
    before = {("dart", "tvd"): "dart-tvd-ci-seed42-6ba6ed66", ("dart", "engine"): "dart-engine-ci-seed42-8ae9c29d"}
    for (task, method), made in before.items():
        assert run_id(resolve_config(task, method, "ci")) == made
    for key, value in (("teacher_mode", "train"), ("data.merge_test_inputs", "true")):
        assert run_id(resolve_config("dart", "tvd", "ci", sets=[(key, value)])) != before["dart", "tvd"]
    assert run_id(resolve_config("dart", "engine", "ci", sets=[("method.max_source_tokens", "8")])) != \
        before["dart", "engine"]

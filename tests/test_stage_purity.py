"""Every stage build is a pure function of its keyed config and of what its upstream stages returned: a builder
reads its config through a view that refuses any field the key does not hold, sees no run config, gets only the
outputs of the stages its key covers, and never changes a split another stage reads."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from harness.accounting import ComputeMeter
from harness.config import RunConfig, resolve_config
from harness.pipeline import Pipeline, plan_for
from harness.pipeline import stages
from harness.pipeline.stages import (STAGES, KeyedConfig, Stage, StageContext, StageInputs, UnkeyedField,
                                     build_teacher_outputs)
from harness.testing import tiny_batch, tiny_models

SMALL = [("data.train_size", "16"), ("data.validation_size", "4"), ("data.test_size", "4")]


def test_the_keyed_config_refuses_unkeyed_reads_and_every_write():
    view = KeyedConfig({"k": 8, "train": {"batch_size": 4}}, "the stage's config")
    assert view["k"] == 8 and view["train"]["batch_size"] == 4 and dict(view["train"]) == {"batch_size": 4}
    assert view.get("rows", "per_reference") == "per_reference"   # left out of the config: keyed by its absence
    with pytest.raises(UnkeyedField, match="the stage's config has no field 'batch_size'"):
        view["batch_size"]
    with pytest.raises(UnkeyedField, match=r"the stage's config\.train has no field 'lr'"):
        view["train"]["lr"]
    with pytest.raises(TypeError):
        view["k"] = 16
    with pytest.raises(TypeError):
        view["train"]["batch_size"] = 8
    copy = view["train"].plain()
    copy["batch_size"] = 8
    assert view["train"]["batch_size"] == 4   # a plain copy is the builder's own


def test_a_builder_reading_a_field_its_key_lacks_fails():
    """The teacher-output store runs the teacher in the KD stage's batches: a plan that left the batch size out of
    its key (the store's key held it nowhere before) stops the build instead of reading the run's setting."""
    _, teacher, _, _ = tiny_models()
    split, _ = tiny_batch(teacher.tokenizer)
    inputs = StageInputs(splits={"train": split}, teacher=teacher, pseudo_labels=split.teacher_outputs)
    context = StageContext(torch.device("cpu"), ComputeMeter(), task=None)
    unkeyed = SimpleNamespace(config=KeyedConfig({"source": "teacher_offline", "k": 4, "truncation": 32}))
    with pytest.raises(UnkeyedField, match="no field 'batch_size'"):
        build_teacher_outputs(unkeyed, inputs, context)


def test_a_pipeline_stage_reading_an_unkeyed_field_fails(tmp_path, monkeypatch):
    """A builder that reaches for a setting outside its keyed fields (here the tokenizer's max_source_tokens at the
    top level, where a run config holds it) fails before anything is written."""
    tokenizer_stage = STAGES["tokenizer"]

    def reads_unkeyed(spec, inputs, context):
        spec.config["max_source_tokens"]
        return tokenizer_stage.build(spec, inputs, context)

    monkeypatch.setitem(STAGES, "tokenizer", Stage(reads_unkeyed, tokenizer_stage.load))
    pipeline = Pipeline(resolve_config("dart", "mle", "ci", sets=[("results_dir", str(tmp_path)), *SMALL]))
    pipeline.load_data()
    with pytest.raises(UnkeyedField, match="the tokenizer stage's config has no field 'max_source_tokens'"):
        pipeline.build("tokenizer")
    assert not list((tmp_path / "cache").glob("tokenizer/*/stage.json"))


def test_a_ci_cell_builds_every_stage_from_its_keyed_config_and_its_upstream_outputs(tmp_path, monkeypatch):
    """A tvd cell with the teacher-output store has every kind of stage. Each build and load gets its config as a
    KeyedConfig and no run config; each gets only the outputs of stages its key covers (the pre-distilled student
    no pseudo-labels, though the cell made them first); every keyed read is recorded."""
    seen: dict[str, dict] = {}
    read: dict[str, set] = {}

    class Recording(KeyedConfig):
        def __getitem__(self, name):
            read.setdefault(self._where, set()).add(name)
            value = super().__getitem__(name)
            return Recording(value._config, value._where) if isinstance(value, KeyedConfig) else value

    def watched(kind, stage):
        def check(spec, inputs, context, *rest):
            assert isinstance(spec.config, KeyedConfig) and spec.schedule is None
            assert not any(isinstance(x, (RunConfig, Pipeline)) for x in (inputs, context, *rest))
            assert not any(isinstance(getattr(inputs, f.name), RunConfig) for f in dataclasses.fields(inputs))
            spec = dataclasses.replace(spec, config=Recording(spec.config._config, spec.label))
            seen[spec.label] = {"stage": kind, "pseudo_labels": inputs.pseudo_labels is not None,
                                "stored": sorted(inputs.stored_teacher), "teacher": inputs.teacher is not None}
            return spec

        def build(spec, inputs, context):
            return stage.build(check(spec, inputs, context), inputs, context)

        def load(spec, inputs, context, path):
            return stage.load(check(spec, inputs, context, path), inputs, context, path)

        return Stage(build, load if stage.load else None)

    for kind, stage in list(STAGES.items()):
        monkeypatch.setitem(STAGES, kind, watched(kind, stage))
    sets = [("results_dir", str(tmp_path)), ("teacher_outputs_k", "8"), *SMALL]
    outcome = Pipeline(resolve_config("dart", "tvd", "ci", sets=sets)).run()
    assert outcome.path.is_dir()
    assert {entry["stage"] for entry in seen.values()} == set(STAGES)
    assert seen["teacher"] == {"stage": "teacher", "pseudo_labels": False, "stored": [], "teacher": False}
    assert seen["predistill"]["pseudo_labels"] is False and seen["predistill"]["stored"] == []
    assert seen["method"]["pseudo_labels"] is True and seen["method"]["stored"] == ["teacher_offline"]
    assert seen["evaluation/teacher"]["pseudo_labels"] is False
    assert {"batch_size", "k", "source"} <= read["teacher_outputs/teacher_offline"]
    assert {"selection", "selection_metric", "sampling", "train", "params", "seed"} <= read["method"]
    assert "truncation" in read["pseudo_labels"]


def test_the_settings_stages_read_are_in_their_keys():
    """Changing a setting a stage reads re-keys that stage: the KD batch size the store runs the teacher in, the
    selection metric a trained stage picks its checkpoint by."""
    def plan(*sets):
        return plan_for(resolve_config("dart", "tvd", "ci", sets=[("teacher_outputs_k", "8"), *sets]))

    base, other = plan(), plan(("kd_train.batch_size", "3"))
    assert base["teacher_outputs/teacher_offline"].config["batch_size"] != 3
    assert other["teacher_outputs/teacher_offline"].key != base["teacher_outputs/teacher_offline"].key
    assert base["pseudo_labels"].config["truncation"] == base["tokenizer"].config["tokenizer"]["max_target_tokens"]
    for label in ("teacher", "predistill", "method"):
        assert base[label].config["selection_metric"] == {"name": "bleu", "higher_is_better": True}


def test_splits_are_immutable_and_attaching_makes_a_new_split():
    _, teacher, _, _ = tiny_models()
    split, _ = tiny_batch(teacher.tokenizer)
    plain = dataclasses.replace(split, teacher_outputs=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.teacher_outputs = split.teacher_outputs
    labelled = plain.with_teacher_outputs(split.teacher_outputs)
    assert plain.teacher_outputs is None and labelled.teacher_outputs == split.teacher_outputs
    stored = labelled.with_stored_teacher("ground_truth", ["row"] * len(split))
    assert dict(labelled.stored_teacher) == {} and list(stored.stored_teacher) == ["ground_truth"]
    with pytest.raises(TypeError):
        stored.stored_teacher["teacher_offline"] = ["row"] * len(split)
    with pytest.raises(ValueError, match="for a split of 4 examples"):
        plain.with_teacher_outputs(split.teacher_outputs[:2])
    assert stages.StageInputs(splits={"train": plain}, pseudo_labels=split.teacher_outputs).training_split() \
        .teacher_outputs == split.teacher_outputs and plain.teacher_outputs is None

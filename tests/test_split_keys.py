"""A stage's key holds the data splits it reads and no other: a larger test split re-keys the evaluations and the
run, never the tokenizer, the teacher, the pseudo-labels or a student (plans only; nothing is trained)."""

from __future__ import annotations

import dataclasses

import pytest

from harness.config import resolve_config
from harness.datasets.sampling import split_records
from harness.pipeline.graph import data_label, plan_for, run_id
from harness.pipeline.load import load_examples
from harness.pipeline.stages import DATA, TokenizedData, gather_inputs
from harness.registry import TASKS

TWINS = ("dart", "xsum", "wmt16_en_ro", "commonsense_dialogue")
TRAINED = ("tokenizer", "teacher", "pseudo_labels", "predistill", "teacher_outputs/teacher_offline", "method")
EVALUATIONS = ("evaluation/teacher", "evaluation/predistill", "evaluation/tvd")


def planned(*sets):
    """The keys and the run id of a DART tvd cell with every kind of stage (the teacher-output store included)."""
    cfg = resolve_config("dart", "tvd", "ci", sets=[("teacher_outputs_k", "8"), *sets])
    plan = plan_for(cfg)
    return plan, run_id(cfg)


def changed(before, after) -> set[str]:
    return {label for label, key in before.keys().items() if after.keys()[label] != key}


@pytest.fixture(scope="module")
def base():
    return planned()


def test_a_larger_test_split_rekeys_the_evaluations_and_the_run_only(base):
    plan, run = base
    grown, grown_run = planned(("data.test_size", str(3 * resolve_config("dart", "tvd", "ci").data.test_size)))
    assert set(plan.keys()) == set(TRAINED + EVALUATIONS)
    assert changed(plan, grown) == set(EVALUATIONS)
    assert grown_run != run   # a run is the whole cell: its id holds the whole data identity
    assert {s: k == plan.data_keys[s] for s, k in grown.data_keys.items()} == \
        {"train": True, "validation": True, "test": False}


@pytest.mark.parametrize("setting, value, kept", [
    # the training inputs: every stage moves (an evaluation through the model it evaluates), the test split stays
    ("data.train_size", "7", set()),
    ("data.max_train_examples", "5", set()),
    # the validation inputs: the tokenizer (trained on the training texts) stays, the teacher selects on them
    ("data.validation_size", "3", {"tokenizer"}),
    ("data.max_eval_examples", "1", {"tokenizer"}),
])
def test_the_training_and_validation_splits_rekey_what_reads_them(base, setting, value, kept):
    plan, _ = base
    other, _ = planned((setting, value))
    assert set(plan.keys()) - changed(plan, other) == kept
    splits = {"data.train_size": {"train"}, "data.max_train_examples": {"train"}, "data.validation_size": {"validation"},
              "data.max_eval_examples": {"validation", "test"}}[setting]
    assert {s for s, k in other.data_keys.items() if k != plan.data_keys[s]} == splits


def test_each_stage_names_the_splits_it_reads(base):
    plan, _ = base
    reads = {spec.label: sorted(name for name in spec.inputs if name.startswith("data/")) for spec in plan.specs}
    assert reads == {"tokenizer": ["data/train"], "teacher": ["data/train", "data/validation"], "pseudo_labels": [],
                     "predistill": [], "teacher_outputs/teacher_offline": ["data/train"], "method": [],
                     **{label: ["data/test"] for label in EVALUATIONS}}
    for split, key in plan.data_keys.items():
        assert all(spec.upstream[data_label(split)] == key for spec in plan.specs if data_label(split) in spec.inputs)


def test_a_stage_gets_only_the_splits_its_key_holds(base):
    """The teacher (and what trains on it) never sees the test split; an evaluation sees it."""
    plan, _ = base
    data = {split: [f"{split} example"] for split in ("train", "validation", "test")}
    outputs = {DATA: data, "tokenizer": TokenizedData("tok", {split: f"{split} tokenised" for split in data})}
    outputs |= {spec.label: None for spec in plan.specs if spec.label != "tokenizer"}
    seen = {label: gather_inputs(plan, plan[label], outputs) for label in ("tokenizer", "teacher", "pseudo_labels",
                                                                           "method", "evaluation/tvd")}
    assert sorted(seen["tokenizer"].examples) == ["train"] and not seen["tokenizer"].splits
    for label in ("teacher", "pseudo_labels", "method"):
        assert sorted(seen[label].splits) == sorted(seen[label].examples) == ["train", "validation"], label
    assert sorted(seen["evaluation/tvd"].splits) == ["test", "train", "validation"]


@pytest.mark.parametrize("task", TWINS)
def test_a_twins_other_splits_stay_when_one_grows(task):
    """What the keys rely on: each twin draws a split from (split, size, seed) alone, so a larger test split leaves
    the training and validation examples as they were (and the old test split is its prefix); a larger training
    split leaves validation and test as they were."""
    data = resolve_config(task, "mle", "ci").data
    examples, _ = load_examples(TASKS.get(task)(data), data)
    more_test, _ = load_examples(TASKS.get(task)(dataclasses.replace(data, test_size=3 * data.test_size)),
                                 dataclasses.replace(data, test_size=3 * data.test_size))
    assert more_test["train"] == examples["train"] and more_test["validation"] == examples["validation"]
    assert more_test["test"][:len(examples["test"])] == examples["test"]
    assert len(more_test["test"]) > len(examples["test"])
    bigger = dataclasses.replace(data, train_size=2 * data.train_size)
    more_train, _ = load_examples(TASKS.get(task)(bigger), bigger)
    assert more_train["validation"] == examples["validation"] and more_train["test"] == examples["test"]


def test_split_from_keeps_the_sizes_of_the_splits_divided_before(tmp_path):
    """One file divided (data.split_from) gives test its inputs first, then validation, then train: a larger test
    split moves the others, so their identities keep test_size (and train's validation_size)."""
    records = [(f"input {i}", None) for i in range(40)]
    sizes = {"train": 10, "validation": 5, "test": 5}
    before = split_records(records, lambda r: r, sizes, 0, "the file")
    after = split_records(records, lambda r: r, {**sizes, "test": 8}, 0, "the file")
    assert after["train"] != before["train"] and after["validation"] != before["validation"]
    assert split_records(records, lambda r: r, {**sizes, "train": 20}, 0, "the file")["test"] == before["test"]

    def fields(**data):
        task = TASKS.get("dart")(resolve_config("dart", "mle", "ci", sets=[(f"data.{k}", v) for k, v in data.items()])
                                 .data)
        return {split: set(task.split_identity(split)["data"]) for split in ("train", "validation", "test")}

    sizes = {"train_size", "validation_size", "test_size"}
    embedded = fields()
    assert embedded["train"] & sizes == {"train_size"} and embedded["test"] & sizes == {"test_size"}
    assert embedded["validation"] & sizes == {"validation_size"}
    divided = fields(source="local", data_dir=str(tmp_path), split_from="validation")
    assert divided["train"] & sizes == sizes and divided["validation"] & sizes == {"validation_size", "test_size"}
    assert divided["test"] & sizes == {"test_size"}
    merged = fields(merge_test_inputs="true")   # the test split's inputs merged: the test split alone
    assert {split for split, names in merged.items() if "merge_test_inputs" in names} == {"test"}

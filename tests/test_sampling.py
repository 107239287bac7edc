"""Representative subsets: the data caps draw a seeded, stratified sample of inputs, and
``data.split_from`` divides one release file into train/validation/test (a small real task)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import harness_tasks  # noqa: F401 - registers the tasks
from harness.config import resolve_config
from harness.datasets.sampling import describe_draw, draw_examples, split_records, stratified_order
from harness.errors import HarnessError
from harness.pipeline import Pipeline
from harness.registry import TASKS
from harness.task import Example
from harness_tasks.commonsense_dialogue import twin as dialogue_twin
from harness_tasks.dart import twin as dart_twin
from harness_tasks.dart.records import records_to_examples

from conftest import write_dart_release

# The repository lives at <root>/main and the shared data at <root>/shared.
SHARED = Path(__file__).resolve().parents[2] / "shared/data"


def _examples(strata: dict[str, int], refs: int = 1) -> list[Example]:
    """``strata[name]`` inputs of each stratum, listed stratum by stratum (as a release file orders them),
    each with ``refs`` examples (one per reference, as a training split)."""
    return [Example(f"{name}{i}-{r}", f"{name} {i}", f"ref {r}", tuple(f"ref {k}" for k in range(refs)), name)
            for name, n in strata.items() for i in range(n) for r in range(refs)]


def _per_stratum(examples: list[Example]) -> dict[str, int]:
    return describe_draw(examples)["per_stratum"]


# --------------------------------------------------------------------------- the order
def test_every_prefix_of_the_order_holds_each_stratum_in_proportion():
    # 6 A, 3 B, 3 C: A sits at 1/12, 3/12, …, B and C at 2/12, 6/12, 10/12 (B before C on ties)
    strata = {**{f"a{i}": "A" for i in range(6)}, **{f"b{i}": "B" for i in range(3)},
              **{f"c{i}": "C" for i in range(3)}}
    order = stratified_order(strata, seed=0)
    assert [strata[k] for k in order] == ["A", "B", "C", "A", "A", "B", "C", "A", "A", "B", "C", "A"]
    assert sorted(order) == sorted(strata)


def test_the_order_is_seeded_and_independent_of_the_order_it_is_given():
    strata = {f"x{i}": "AB"[i % 2] for i in range(40)}
    order = stratified_order(strata, seed=3)
    assert order == stratified_order(dict(reversed(list(strata.items()))), seed=3)
    assert order != stratified_order(strata, seed=4)
    assert stratified_order({f"x{i}": None for i in range(40)}, seed=3) != sorted(strata)   # no strata: shuffled


# --------------------------------------------------------------------------- the caps
def test_a_cap_draws_each_stratum_in_proportion_and_keeps_the_file_order():
    examples = _examples({"e2e": 60, "webnlg": 30, "wikitable": 10})
    drawn = draw_examples(examples, seed=0, inputs=20)
    assert _per_stratum(drawn) == {"e2e": 12, "webnlg": 6, "wikitable": 2}
    assert drawn == [e for e in examples if e in drawn]          # file order
    assert examples[:20] != drawn                                 # not the first 20 (all e2e)


def test_a_cap_is_seeded_and_stable():
    examples = _examples({"e2e": 60, "webnlg": 30, "wikitable": 10})
    a, b = draw_examples(examples, seed=0, inputs=20), draw_examples(examples, seed=0, inputs=20)
    assert [e.id for e in a] == [e.id for e in b]
    assert describe_draw(a)["ids_sha256"] == describe_draw(b)["ids_sha256"]
    other = draw_examples(examples, seed=1, inputs=20)
    assert {e.id for e in other} != {e.id for e in a}
    assert describe_draw(other)["ids_sha256"] != describe_draw(a)["ids_sha256"]


def test_a_row_cap_keeps_all_references_of_a_drawn_input():
    examples = _examples({"A": 10, "B": 10}, refs=3)
    drawn = draw_examples(examples, seed=0, rows=20)
    per_input = Counter(e.source for e in drawn)
    assert set(per_input.values()) == {3} and len(drawn) == 18    # 6 whole inputs: a 7th would make 21 rows
    assert _per_stratum(drawn) == {"A": 3, "B": 3}
    assert draw_examples(examples, seed=0, inputs=4, rows=20) == draw_examples(examples, seed=0, inputs=4)


def test_no_cap_changes_nothing():
    examples = _examples({"A": 5, "B": 2}, refs=2)
    assert draw_examples(examples, seed=0) is examples
    assert draw_examples(examples, seed=0, inputs=7, rows=14) is examples


def test_the_stratum_is_no_part_of_an_examples_equality():
    a, b = Example("1", "s", "t", ("t",)), Example("1", "s", "t", ("t",), "webnlg")
    assert a == b and hash(a) == hash(b)


def test_dart_records_give_their_source_as_stratum():
    records = [{"tripleset": [["A", "p", "B"]], "annotations": [{"source": "webnlg", "text": "A p B."}]},
               {"tripleset": [["C", "p", "D"]], "annotations": [{"source": "", "text": "C p D."}]}]
    assert [e.stratum for e in records_to_examples(records, "test")] == ["webnlg", None]


def _load(tmp_path, task="dart", sets=()):
    pipeline = Pipeline(resolve_config(task, "mle", "ci", sets=[("results_dir", str(tmp_path / "results")), *sets]))
    pipeline.load_data()
    return pipeline


def test_without_caps_the_pipeline_loads_what_the_task_loads(tmp_path):
    pipeline = _load(tmp_path)
    for split in ("train", "validation", "test"):
        assert pipeline.outputs["data"][split] == pipeline.task.load(split)
        assert pipeline.drawn[split] == describe_draw(pipeline.outputs["data"][split])


def _mixed_dart_file(path: Path, n: int, seed: int = 0) -> list[dict]:
    """A DART release-shape file of ``n`` twin records ordered by source (three sources, as the real files)."""
    records = dart_twin.generate_split("validation", n, seed)
    sources = ["WikiSQL_decl_sents"] * (n // 5) + ["webnlg"] * (n // 5) + ["e2e"] * (n - 2 * (n // 5))
    for record, source in zip(records, sources):
        record["annotations"] = [{**ann, "source": source} for ann in record["annotations"]]
    path.write_text(json.dumps(records))
    return records


def test_capped_evaluation_splits_are_stratified_and_recorded(tmp_path):
    release = write_dart_release(tmp_path / "dart")
    _mixed_dart_file(release / "dart-v1.1.1-full-test.json", 50)    # 10 WikiSQL, 10 webnlg, 30 e2e, in that order
    pipeline = _load(tmp_path, sets=[("data.source", "local"), ("data.data_dir", str(release)),
                                     ("data.max_eval_examples", "10")])
    drawn = pipeline.drawn["test"]
    assert drawn["per_stratum"] == {"WikiSQL_decl_sents": 2, "e2e": 6, "webnlg": 2}
    assert drawn["inputs"] == drawn["examples"] == len(pipeline.outputs["data"]["test"]) == 10
    assert _load(tmp_path, sets=[("data.source", "local"), ("data.data_dir", str(release)),
                                 ("data.max_eval_examples", "10")]).drawn == pipeline.drawn


# --------------------------------------------------------------------------- one file, three splits
def test_split_records_is_disjoint_by_input_sized_and_stratified():
    records = [(f"in{i // 2}", "AB"[i % 3 == 0]) for i in range(60)] + [("in99", "A")]   # 31 inputs, most twice
    parts = split_records(records, lambda r: r, {"train": 20, "validation": 6, "test": 10}, 0, "f")
    inputs = {split: {key for key, _ in part} for split, part in parts.items()}
    assert not (inputs["train"] & inputs["test"] or inputs["train"] & inputs["validation"]
                or inputs["validation"] & inputs["test"])
    for split, size in (("train", 20), ("validation", 6), ("test", 10)):
        assert size <= len(parts[split]) <= size + 1                       # whole inputs: one record more at most
        assert parts[split] == [r for r in records if r in parts[split]]  # file order
    with pytest.raises(HarnessError, match="f: 61 records, fewer than the split sizes ask"):
        split_records(records, lambda r: r, {"train": 50, "validation": 6, "test": 10}, 0, "f")


def test_split_from_divides_the_dialogue_file_by_context(tmp_path):
    folder = tmp_path / "dialogue"
    folder.mkdir()
    (folder / "valid.json").write_text(json.dumps(dialogue_twin.generate_split("validation", 60, 0)))
    data = resolve_config("commonsense_dialogue", "mle", "ci",
                          sets=[("data.source", "local"), ("data.data_dir", str(folder)),
                                ("data.split_from", "validation")]).data
    task = TASKS.get("commonsense_dialogue")(data)
    parts = {split: task.records(split) for split in ("train", "validation", "test")}
    assert [len(parts[s]) >= n for s, n in (("train", 30), ("validation", 2), ("test", 2))] == [True] * 3
    contexts = {split: {d.context for d in part} for split, part in parts.items()}
    assert not (contexts["train"] & contexts["test"] or contexts["train"] & contexts["validation"])


def test_split_from_needs_a_release_file(tmp_path):
    cfg = resolve_config("dart", "mle", "ci", sets=[("data.split_from", "validation"),
                                                    ("results_dir", str(tmp_path))])
    with pytest.raises(HarnessError, match="data.split_from divides a release file"):
        Pipeline(cfg).load_data()


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared data folder (../shared/data) beside the repository")
@pytest.mark.parametrize("task, folder", [("dart", "dart"), ("commonsense_dialogue", "commonsense_dialogues")])
def test_the_real_files_split_to_the_twins_sizes(task, folder):
    sets = [("data.source", "local"), ("data.data_dir", str(SHARED / folder)), ("data.split_from", "validation")]
    cfg = resolve_config(task, "js", "cpu", sets=sets)
    loaded = TASKS.get(task)(cfg.data)
    records = {split: loaded.records(split) for split in ("train", "validation", "test")}
    examples = {split: loaded.to_examples(part, split) for split, part in records.items()}
    for split, size in (("train", cfg.data.train_size), ("validation", cfg.data.validation_size),
                        ("test", cfg.data.test_size)):
        assert size <= len(records[split]) <= size + 5                  # one context's dialogues more at most
    sources = {split: {e.source for e in part} for split, part in examples.items()}
    assert not (sources["train"] & sources["test"] or sources["train"] & sources["validation"]
                or sources["validation"] & sources["test"])
    if task == "dart":   # the dev file's six sources, each in the test split in proportion (± 1)
        whole = describe_draw(loaded.to_examples(loaded.source_records("validation"), "test"))
        test = describe_draw(examples["test"])
        assert set(test["per_stratum"]) == set(whole["per_stratum"]) and len(whole["per_stratum"]) == 6
        for stratum, n in whole["per_stratum"].items():
            assert abs(test["per_stratum"][stratum] - n * test["inputs"] / whole["inputs"]) <= 2


# --------------------------------------------------------------------------- one cell on real-shaped data
@pytest.mark.slow
def test_a_ci_cell_runs_on_one_divided_release_file(tmp_path, harness_cli):
    release = tmp_path / "dart"
    release.mkdir()
    _mixed_dart_file(release / "dart-v1.1.1-full-dev.json", 70)
    proc = harness_cli("run", "--task", "dart", "--method", "js", "--profile", "ci", "--data-dir", release,
                       "--set", "data.split_from=validation", "--results-dir", tmp_path / "results")
    assert proc.code == 0, proc.err
    manifest = json.loads(next((tmp_path / "results" / "runs").glob("*/manifest.json")).read_text())
    drawn = manifest["data"]["drawn"]
    assert manifest["config"]["data"]["split_from"] == "validation"
    assert (drawn["train"]["inputs"], drawn["validation"]["inputs"], drawn["test"]["inputs"]) == (40, 8, 10)
    assert set(drawn["test"]["per_stratum"]) == {"WikiSQL_decl_sents", "e2e", "webnlg"}


def test_the_real_text_grid_gives_each_task_its_own_folder(tmp_path):
    from harness.grid import expand, load_spec

    cells = expand(load_spec("table2_real").for_profile(), str(tmp_path))
    assert len(cells) == 2 * 8 * 3
    for cell in cells:
        data = cell.config().data
        assert (data.source, data.split_from) == ("local", "validation")
        assert data.data_dir == {"dart": "../shared/data/dart",
                                 "commonsense_dialogue": "../shared/data/commonsense_dialogues"}[cell.task]
    assert not any(tmp_path.iterdir())


def test_a_profile_section_merges_task_settings_key_by_key():
    from harness.grid.spec import parse_spec

    text = '''
tasks = ["dart"]
[task_set.dart]
"data.source" = "local"
"data.data_dir" = "a"
[profiles.ci.task_set.dart]
"data.data_dir" = "b"
'''
    spec = parse_spec(text, ".toml", "t.toml")
    assert spec.for_profile("ci").task_set == {"dart": {"data.source": "local", "data.data_dir": "b"}}
    assert spec.for_profile("cpu").task_set == {"dart": {"data.source": "local", "data.data_dir": "a"}}
    with pytest.raises(HarnessError, match=r"\[task_set.TASK\] must be tables"):
        parse_spec('task_set = {dart = 1}', ".toml", "t.toml")

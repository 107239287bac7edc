"""The shared data-set plumbing: the source dispatch every task uses and the twins' helpers."""

from __future__ import annotations

import random

import pytest

import harness_tasks  # noqa: F401 - registers the tasks
from harness.config import resolve_config
from harness.datasets.release import read_json, release_file
from harness.datasets.sources import SOURCES, SourcedTask
from harness.datasets.twins import (MAX_MISSES, NameMaker, check_request, pick_weighted, sample_distinct,
                                    split_of_hash, stable_seed)
from harness.errors import HarnessError
from harness.registry import TASKS

TASK_NAMES = ("dart", "xsum", "wmt16_en_ro", "commonsense_dialogue")


def _task(name: str, **data):
    cfg = resolve_config(name, "mle", "ci")
    for key, value in data.items():
        setattr(cfg.data, key, value)
    return TASKS.get(name)(cfg.data)


# --------------------------------------------------------------------------- the source dispatch
@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_uses_the_one_dispatch(name):
    task = _task(name)
    assert isinstance(task, SourcedTask) and task.data_sources == SOURCES
    assert task.load("test") == task.to_examples(task.embedded_records("test", task.data.test_size, task.data.seed),
                                                 "test")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_unknown_source_names_the_task_and_its_sources(name):
    with pytest.raises(HarnessError) as info:
        _task(name, source="ftp").load("test")
    assert str(info.value) == f"unknown data source 'ftp' for task {name}; known: embedded, local, hub"


@pytest.mark.parametrize("name", TASK_NAMES)
def test_local_source_without_a_folder_says_how_to_give_one(name):
    with pytest.raises(HarnessError, match=r"^data\.source=local needs a folder: --data-dir DIR "):
        _task(name, source="local").load("train")


def test_a_task_without_a_hub_refuses_the_hub_source():
    class TwinOnly(SourcedTask):
        name = "twin_only"
        data_sources = ("embedded",)

    with pytest.raises(HarnessError, match="unknown data source 'hub' for task twin_only; known: embedded$"):
        TwinOnly(_task("dart", source="hub").data).records("test")


# --------------------------------------------------------------------------- release files
def test_read_json_wants_a_non_empty_container_of_the_right_kind(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    with pytest.raises(HarnessError, match=r"x\.json: expected a list of things, got a JSON object$"):
        read_json(path, list, "a list of things")
    path.write_text("[]")
    with pytest.raises(HarnessError, match=r"x\.json: contains no things \(an empty JSON array\)$"):
        read_json(path, list, "a list of things", nothing="things")
    path.write_text("[1]")
    assert read_json(path, list, "a list of things") == [1]


def test_release_file_names_every_release_file(tmp_path):
    files = {"train": "tr.json", "validation": "va.json", "test": "te.json"}
    with pytest.raises(HarnessError, match=r"^Thing test file not found: .*te\.json \(the release files are "
                                           r"tr\.json, va\.json, te\.json\)$"):
        release_file(tmp_path, "test", files, "Thing")
    with pytest.raises(HarnessError, match="^unknown Thing split 'dev'"):
        release_file(tmp_path, "dev", files, "Thing")


# --------------------------------------------------------------------------- twins
def test_stable_seed_is_pinned():
    # Every twin's records derive from this hash: a change here changes every data set.
    assert stable_seed("a", 1) == 9484037261928657086
    assert stable_seed("a", 1) == stable_seed("a\x1f1") != stable_seed("a", 2)


def test_split_buckets_give_ten_ten_eighty():
    splits = [split_of_hash(v) for v in range(20)]
    assert (splits.count("validation"), splits.count("test"), splits.count("train")) == (2, 2, 16)


def test_pick_weighted_draws_by_weight():
    rng = random.Random(0)
    draws = [pick_weighted(rng, {"a": 0.9, "b": 0.1, "c": 0.0}) for _ in range(2000)]
    assert "c" not in draws and 0.85 < draws.count("a") / len(draws) < 0.95


def test_check_request():
    check_request("train", 0)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        check_request("dev", 1)
    with pytest.raises(ValueError, match="n_records must be >= 0, got -1"):
        check_request("test", -1, "n_records")


def test_sample_distinct_keeps_new_keys_of_the_split_and_gives_up_on_a_small_space():
    rng = random.Random(0)
    items = sample_distinct(5, lambda: (k := rng.randrange(20), k), lambda k: k % 2 == 0, "even numbers")
    assert len(set(items)) == 5 and all(k % 2 == 0 for k in items)
    with pytest.raises(ValueError, match=r"cannot make 11 even numbers \(made 10\)"):
        sample_distinct(11, lambda: (k := rng.randrange(20), k), lambda k: k % 2 == 0, "even numbers")
    assert MAX_MISSES >= 1000


def test_name_maker_never_repeats_a_word():
    maker = NameMaker(random.Random(0), ("b", "d"), ("a",), ("n",))
    words = [maker.unique(lambda: maker.syllables(1)) for _ in range(2)]
    assert sorted(words) == ["ban", "dan"]
    draws = iter([None, "ban", "zed"])   # a rejected draw, a used word, a new word
    assert maker.unique(lambda: next(draws)) == "zed" and "zed" in maker.used

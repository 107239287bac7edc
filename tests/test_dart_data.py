"""Tests of the DART data layer: the embedded twin and the record reader/converter."""

from __future__ import annotations

import collections
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.task import Example
from harness_tasks.dart.records import (
    RELEASE_FILES,
    linearise,
    load_hub,
    load_local,
    normalise_record,
    read_release_json,
    records_to_examples,
)
from harness_tasks.dart.twin import PHRASINGS, PREDICATES, SOURCE, generate_records, generate_split

from conftest import write_dart_release


@pytest.fixture
def release_dir(tmp_path):
    return write_dart_release(tmp_path / "dart_release")
# The repository lives at <root>/main and the shared data at <root>/shared.
REAL_DEV = Path(__file__).resolve().parents[2] / "shared/data/dart/dart-v1.1.1-full-dev.json"


def _key(record: dict) -> tuple:
    return tuple(sorted(tuple(t) for t in record["tripleset"]))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text)


@pytest.fixture(scope="module")
def train2000() -> list[dict]:
    return generate_split("train", 2000, 0)


# --------------------------------------------------------------------------- twin
def test_twin_is_deterministic_and_ignores_global_random_state():
    random.seed(1)
    a = generate_records(60, 7)
    random.seed(2)
    random.random()
    b = generate_records(60, 7)
    assert a == b
    assert generate_records(60, 8) != a
    assert generate_split("test", 30, 7) == generate_split("test", 30, 7)
    assert generate_split("test", 30, 7) != generate_split("test", 30, 8)


def test_twin_prefix_is_stable():
    # Asking for more records extends the list: the first ones do not change.
    assert generate_split("train", 40, 3)[:25] == generate_split("train", 25, 3)


def test_twin_records_have_the_release_schema():
    records = generate_records(300, 0)
    assert len(records) == 300
    for i, record in enumerate(records):
        assert set(record) == {"tripleset", "subtree_was_extended", "annotations"}
        assert isinstance(record["subtree_was_extended"], bool)
        assert 1 <= len(record["tripleset"]) <= 4
        assert 2 <= len(record["annotations"]) <= 4
        for ann in record["annotations"]:
            assert set(ann) == {"source", "text"} and ann["source"] == SOURCE
            text = ann["text"]
            assert text[0].isupper() and text.endswith(".") and ".." not in text
        assert normalise_record(record, "twin", i) == record
    # It survives a round trip through the release file format.
    assert json.loads(json.dumps(records)) == records


def test_twin_triplesets_look_like_dart():
    records = generate_split("train", 1000, 0)
    sizes = collections.Counter(len(r["tripleset"]) for r in records)
    assert set(sizes) == {1, 2, 3, 4}
    multi = [r for r in records if len(r["tripleset"]) > 1]
    shared_subject = sum(len({t[0] for t in r["tripleset"]}) == 1 for r in multi)
    assert shared_subject / len(multi) > 0.5
    chains = [r for r in multi if r["subtree_was_extended"]]
    assert chains
    for r in chains:  # a chain's extra subject is an object of the tripleset
        subjects = {t[0] for t in r["tripleset"]}
        objects = {t[2] for t in r["tripleset"]}
        assert subjects - {r["tripleset"][0][0]} <= objects
    assert len({_key(r) for r in records}) == len(records)  # unique within a split
    for r in records:
        assert all(re.fullmatch(r"[A-Z_]+", t[1]) for t in r["tripleset"])


def test_twin_splits_are_disjoint():
    train = generate_split("train", 3000, 0)
    validation = generate_split("validation", 400, 0)
    test = generate_split("test", 400, 0)
    keys = {name: {_key(r) for r in recs}
            for name, recs in (("train", train), ("validation", validation), ("test", test))}
    assert not keys["train"] & keys["validation"]
    assert not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    # Disjoint whatever the sizes: evaluation sets never meet a bigger training set either.
    bigger = {_key(r) for r in generate_split("train", 6000, 0)}
    assert not bigger & keys["test"]


def test_twin_unknown_split():
    with pytest.raises(ValueError):
        generate_split("dev", 3, 0)


def test_twin_has_several_references_with_a_dominant_mode(train2000):
    distinct = sum(len({a["text"] for a in r["annotations"]}) >= 2 for r in train2000)
    assert distinct / len(train2000) > 0.75

    # Every predicate is used.
    used = collections.Counter(t[1] for r in train2000 for t in r["tripleset"])
    assert set(used) == set(PREDICATES)
    assert 25 <= len(PREDICATES) <= 40

    # Phrasing weights are unequal by construction ...
    for pred, phrasings in PHRASINGS.items():
        weights = sorted((w for _k, _t, w in phrasings), reverse=True)
        assert 3 <= len(weights) <= 4 and abs(sum(weights) - 1) < 1e-9
        assert weights[0] > weights[-1], pred

    # ... and visible in the data: on single-triple records, the texts of a predicate
    # (with subject and object masked) take several shapes, the commonest one well
    # above a uniform share.
    shapes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in train2000:
        if len(r["tripleset"]) == 1:
            s, p, o = r["tripleset"][0]
            for a in r["annotations"]:
                shape = a["text"].replace(s, "<S>").replace(o, "<O>")
                shapes[p][re.sub(r"\ban? <O>", "A <O>", shape)] += 1
    checked = 0
    for p, counter in shapes.items():
        n = sum(counter.values())
        if n < 30:
            continue
        checked += 1
        assert len(counter) >= 2, p
        assert counter.most_common(1)[0][1] / n > 1.2 / len(counter), (p, counter)
    assert checked >= 5


def test_twin_is_small_enough_to_learn(train2000):
    texts = [a["text"] for r in train2000 for a in r["annotations"]]
    vocabulary = {w for t in texts for w in _words(t)}
    assert len(vocabulary) < 1500
    lengths = [len(t.split()) for t in texts]
    mean = sum(lengths) / len(lengths)
    assert 8 <= mean <= 40
    assert max(lengths) <= 60


def test_twin_aggregates_and_varies_order(train2000):
    texts = [a["text"] for r in train2000 for a in r["annotations"]]
    assert any(" and " in t for t in texts)
    assert any(", which " in t for t in texts)
    assert any(", who " in t for t in texts)
    assert any(re.search(r"\. (He|She|It) ", t) for t in texts)


# --------------------------------------------------------------------------- conversion
def test_linearise_known_tripleset():
    tripleset = [["Harbin Institute", "ESTABLISHED", "1961"],
                 ["Harbin Institute", "LOCATION", "Calder Springs, Oregon"],
                 ["1987 Tasmin Open", "[TITLE]", "Singles Results"],
                 ["Blue Heron", "customer rating", "5 out of 5"]]
    assert linearise(tripleset) == (
        "Harbin Institute : established : 1961 | "
        "Harbin Institute : location : Calder Springs, Oregon | "
        "1987 Tasmin Open : [title] : Singles Results | "
        "Blue Heron : customer rating : 5 out of 5")
    assert linearise([["A b", "BIRTH_PLACE", "C D"]]) == "A b : birth_place : C D"


def _records() -> list[dict]:
    return [
        {"tripleset": [["A", "P", "B"]],
         "annotations": [{"source": "x", "text": "  A p B.  "}, {"source": "x", "text": "B is A's."}]},
        {"tripleset": [["C", "Q", "D"], ["C", "R", "E"]],
         "annotations": [{"source": "x", "text": "   "}, {"source": "x", "text": "C q D."},
                         {"source": "x", "text": "C r E."}]},
        {"tripleset": [["F", "S", "G"]], "annotations": [{"source": "x", "text": ""}]},
    ]


def test_records_to_examples_train():
    examples = records_to_examples(_records(), "train", "dart")
    assert all(isinstance(e, Example) for e in examples)
    assert [e.id for e in examples] == ["dart-train-0-0", "dart-train-0-1",
                                        "dart-train-1-1", "dart-train-1-2"]
    assert [e.target for e in examples] == ["A p B.", "B is A's.", "C q D.", "C r E."]
    assert examples[0].references == ("A p B.", "B is A's.")
    assert examples[2].references == examples[3].references == ("C q D.", "C r E.")
    assert examples[2].source == "C : q : D | C : r : E"


@pytest.mark.parametrize("split", ["validation", "test"])
def test_records_to_examples_eval(split):
    examples = records_to_examples(_records(), split, "dart")
    assert [e.id for e in examples] == [f"dart-{split}-0", f"dart-{split}-1"]
    assert examples[0].target == "A p B." and examples[0].references == ("A p B.", "B is A's.")
    assert examples[1].target == "C q D." and examples[1].references == ("C q D.", "C r E.")


def test_records_to_examples_counts_on_twin():
    records = generate_split("validation", 50, 1)
    n_refs = sum(len(r["annotations"]) for r in records)
    train = records_to_examples(records, "train", "twin")
    assert len(train) == n_refs
    evaluation = records_to_examples(records, "validation", "twin")
    assert len(evaluation) == len(records)
    for example, record in zip(evaluation, records):
        assert example.references == tuple(a["text"] for a in record["annotations"])
        assert example.target == record["annotations"][0]["text"]
        assert example.source == linearise(record["tripleset"])
    assert len({e.id for e in train}) == len(train)


def test_records_to_examples_unknown_split():
    with pytest.raises(HarnessError):
        records_to_examples(_records(), "dev", "dart")


# --------------------------------------------------------------------------- release files
@pytest.mark.parametrize("split,n_records,n_refs",
                         [("train", 8, 15), ("validation", 6, 13), ("test", 5, 10)])
def test_read_fixture_files(split, n_records, n_refs, release_dir):
    records = read_release_json(release_dir / RELEASE_FILES[split])
    assert len(records) == n_records
    assert sum(len(r["annotations"]) for r in records) == n_refs
    sizes = [len(r["tripleset"]) for r in records]
    assert min(sizes) >= 1
    for r in records:
        assert all(isinstance(a, dict) and set(a) == {"source", "text"} for a in r["annotations"])
    assert load_local(release_dir, split) == records
    examples = records_to_examples(records, split, "dart")
    assert len(examples) == (n_refs if split == "train" else n_records)


def test_fixtures_cover_the_interesting_cases(release_dir):
    records = [r for split in RELEASE_FILES for r in load_local(release_dir, split)]
    sizes = [len(r["tripleset"]) for r in records]
    assert 1 in sizes and max(sizes) >= 4
    assert any(len(r["annotations"]) >= 3 for r in records)
    assert any("subtree_was_extended" not in r for r in records)  # E2E records lack it


def _write(tmp_path: Path, content, name: str = "dart-v1.1.1-full-dev.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def _good(n: int = 3) -> list[dict]:
    return [{"tripleset": [[f"S{i}", "P", "O"]], "subtree_was_extended": False,
             "annotations": [{"source": "webnlg", "text": f"S{i} p O."}]} for i in range(n)]


def test_read_release_json_missing_file(tmp_path):
    with pytest.raises(HarnessError, match="dart-v1.1.1-full-dev.json: file not found"):
        read_release_json(tmp_path / "dart-v1.1.1-full-dev.json")


@pytest.mark.parametrize("content,message", [
    ("", "file is empty"),
    ("  \n", "file is empty"),
    ("[{\"tripleset\": ", "not valid JSON"),
    ("{\"tripleset\": []}", "expected a JSON list"),
    ("[]", "no records"),
])
def test_read_release_json_bad_file(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(HarnessError) as info:
        read_release_json(path)
    assert "dart-v1.1.1-full-dev.json" in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)


def _break(mutate) -> list[dict]:
    records = _good(4)
    mutate(records[2])
    return records


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.pop("annotations"), "missing required field(s) 'annotations'"),
    (lambda r: r.pop("tripleset"), "missing required field(s) 'tripleset'"),
    (lambda r: r.update(tripleset=[["S", "P"]]), "triple 0 must be a list of 3 strings"),
    (lambda r: r.update(tripleset=[["S", "P", 3]]), "triple 0 must be a list of 3 strings"),
    (lambda r: r.update(tripleset="S P O"), "'tripleset' must be a non-empty list"),
    (lambda r: r.update(tripleset=[]), "'tripleset' must be a non-empty list"),
    (lambda r: r["annotations"][0].update(text=None), "'text' must be a string"),
    (lambda r: r["annotations"][0].update(text=["a"]), "'text' must be a string"),
    (lambda r: r.update(annotations=[]), "'annotations' must be a non-empty list"),
    (lambda r: r.update(annotations="text"), "'annotations' must be a non-empty list"),
    (lambda r: r.update(annotations=[{"source": "x"}]), "'annotations' must be a non-empty list"),
    (lambda r: r.update(subtree_was_extended="yes"), "'subtree_was_extended' must be true or false"),
])
def test_read_release_json_bad_record(tmp_path, mutate, message):
    path = _write(tmp_path, _break(mutate))
    with pytest.raises(HarnessError) as info:
        read_release_json(path)
    text = str(info.value)
    assert text.startswith(f"{path}: record 2: "), text
    assert message in text
    assert "\n" not in text


def test_read_release_json_not_an_object(tmp_path):
    path = _write(tmp_path, [_good(1)[0], ["S", "P", "O"]])
    with pytest.raises(HarnessError, match=r"record 1: must be a JSON object"):
        read_release_json(path)


def test_first_bad_record_is_reported(tmp_path):
    records = _good(6)
    records[4]["tripleset"] = [["only two", "items"]]
    records[1].pop("annotations")
    with pytest.raises(HarnessError, match=r": record 1: "):
        read_release_json(_write(tmp_path, records))


def test_normalise_record_hub_shape():
    hub = {"tripleset": [["A", "P", "B"]], "subtree_was_extended": None,
           "annotations": {"source": ["e2e", "webnlg"], "text": ["A p B.", "B."]},
           "extra_column": 1}
    assert normalise_record(hub, "hub", 0) == {
        "tripleset": [["A", "P", "B"]],
        "annotations": [{"source": "e2e", "text": "A p B."}, {"source": "webnlg", "text": "B."}]}
    hub["annotations"] = {"source": ["e2e"], "text": ["A.", "B."]}
    with pytest.raises(HarnessError, match="hub: record 5: .*equal length"):
        normalise_record(hub, "hub", 5)
    hub["annotations"] = {"source": [], "text": []}
    with pytest.raises(HarnessError, match="non-empty list"):
        normalise_record(hub, "hub", 5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8), st.text(max_size=8)),
                min_size=1, max_size=5),
       st.lists(st.tuples(st.text(max_size=5), st.text(max_size=20)), min_size=1, max_size=4),
       st.one_of(st.none(), st.booleans()))
def test_hub_and_release_shapes_agree(triples, annotations, extended):
    release = {"tripleset": [list(t) for t in triples],
               "annotations": [{"source": s, "text": t} for s, t in annotations]}
    if extended is not None:
        release["subtree_was_extended"] = extended
    hub = {"tripleset": [list(t) for t in triples], "subtree_was_extended": extended,
           "annotations": {"source": [s for s, _ in annotations], "text": [t for _, t in annotations]}}
    assert normalise_record(release, "f", 0) == normalise_record(hub, "f", 0) == release
    if not any("|" in part for t in triples for part in t):  # a literal '|' in a value adds separators
        assert linearise(release["tripleset"]).count(" | ") == len(triples) - 1


def test_load_local_missing_directory_and_file(tmp_path):
    with pytest.raises(HarnessError) as info:
        load_local(tmp_path / "nowhere", "validation")
    text = str(info.value)
    assert "dart-v1.1.1-full-dev.json" in text
    assert all(name in text for name in RELEASE_FILES.values())

    _write(tmp_path, _good(), "dart-v1.1.1-full-train.json")
    assert len(load_local(tmp_path, "train")) == 3
    with pytest.raises(HarnessError) as info:
        load_local(tmp_path, "test")
    text = str(info.value)
    assert "dart-v1.1.1-full-test.json" in text
    assert all(name in text for name in RELEASE_FILES.values())
    with pytest.raises(HarnessError, match="unknown DART split"):
        load_local(tmp_path, "dev")


# --------------------------------------------------------------------------- hub


def _hub_rows(records: list[dict]) -> list[dict]:
    return [{"tripleset": r["tripleset"], "subtree_was_extended": r["subtree_was_extended"],
             "annotations": {"source": [a["source"] for a in r["annotations"]],
                             "text": [a["text"] for a in r["annotations"]]}}
            for r in records]


def test_load_hub_from_local_parquet_directory(tmp_path, no_network):
    pd = pytest.importorskip("pandas")
    hub_dir = tmp_path / "dart-hub"
    hub_dir.mkdir()
    expected = {}
    for split, n in (("train", 12), ("validation", 5), ("test", 4)):
        expected[split] = generate_split(split, n, 0)
        pd.DataFrame(_hub_rows(expected[split])).to_parquet(
            hub_dir / f"{split}-00000-of-00001.parquet")
    for split in expected:
        assert load_hub(str(hub_dir), None, split) == expected[split]


def test_load_hub_reports_bad_rows(tmp_path, no_network):
    pd = pytest.importorskip("pandas")
    hub_dir = tmp_path / "dart-hub"
    hub_dir.mkdir()
    rows = _hub_rows(generate_split("test", 3, 0))
    rows[1]["annotations"] = {"source": ["a"], "text": ["x", "y"]}
    pd.DataFrame(rows).to_parquet(hub_dir / "test-00000-of-00001.parquet")
    with pytest.raises(HarnessError, match=r"record 1: .*equal length"):
        load_hub(str(hub_dir), None, "test")


def test_load_hub_offline_is_one_line_error(no_network):
    with pytest.raises(HarnessError) as info:
        load_hub("harness-tests/no-such-dart-dataset", "refs/convert/parquet", "validation")
    err = info.value
    text = str(err)
    assert text.startswith("could not load DART from the hub ('harness-tests/no-such-dart-dataset', "
                           "revision 'refs/convert/parquet'): ")
    assert "--set data.source=local" in text and "data.data_dir=DIR" in text
    assert "\n" not in text
    assert err.__cause__ is None and err.__suppress_context__  # no chained traceback


# --------------------------------------------------------------------------- real data
@pytest.mark.skipif(not REAL_DEV.is_file(), reason=f"real DART dev file not found at {REAL_DEV}")
def test_real_dev_file():
    records = read_release_json(REAL_DEV)
    assert len(records) == 2768
    texts = [a["text"] for r in records for a in r["annotations"] if a["text"].strip()]
    assert len(texts) == 6980
    assert len(records_to_examples(records, "validation", "dart")) == 2768
    assert len(records_to_examples(records, "train", "dart")) == 6980
    assert linearise(records[0]["tripleset"]) == (
        "Mars Hill College : joined : 1973 | Mars Hill College : location : Mars Hill, North Carolina")


# --------------------------------------------------------------------------- the paper's merged test split
def _entries() -> list[dict]:
    """Test entries as the release lists them: one tripleset twice (WebNLG's duplicates), one predicate that
    differs only in case (the same input once linearised), one entry alone."""
    def entry(triples, *texts, source="webnlg"):
        return {"tripleset": triples, "annotations": [{"source": source, "text": t} for t in texts]}
    return [entry([["A", "P", "B"]], "A p B.", "B is A's p."),
            entry([["C", "Q", "D"]], "C q D.", source="e2e"),
            entry([["A", "P", "B"]], "Third text."),
            entry([["A", "p", "B"]], "Fourth text.", "Fifth text.")]


def _dart(tmp_path, merge: bool):
    from harness.config import DataConfig
    from harness_tasks.dart import DartTask

    folder = write_dart_release(tmp_path / "release")
    (folder / RELEASE_FILES["test"]).write_text(json.dumps(_entries()), encoding="utf-8")
    return DartTask(DataConfig(source="local", data_dir=str(folder), merge_test_inputs=merge))


def test_the_merged_test_split_has_one_example_per_tripleset_with_every_reference(tmp_path):
    """As the paper's kit counts DART's test set (4,159 triplesets of 5,097 entries): the entries of one
    linearised tripleset become one input, at its first entry, its references all of theirs in release order."""
    merged = _dart(tmp_path, merge=True).load("test")
    assert [e.source for e in merged] == ["A : p : B", "C : q : D"]
    assert merged[0].references == ("A p B.", "B is A's p.", "Third text.", "Fourth text.", "Fifth text.")
    assert (merged[0].id, merged[0].target, merged[0].stratum) == ("dart-test-0", "A p B.", "webnlg")
    assert merged[1] == _dart(tmp_path / "again", merge=False).load("test")[1]


def test_without_the_merge_every_entry_is_scored_and_other_splits_never_merge(tmp_path):
    task = _dart(tmp_path, merge=False)
    assert len(task.load("test")) == 4
    merging = _dart(tmp_path / "merging", merge=True)
    assert merging.load("validation") == task.load("validation")


def test_the_merge_enters_the_data_identity_only_when_on(tmp_path):
    """Off (the default), the data identity is what it was before the setting existed; on, it is another."""
    off, on = _dart(tmp_path, merge=False).data_identity(), _dart(tmp_path / "on", merge=True).data_identity()
    assert "merge_test_inputs" not in off["data"]
    assert on["data"]["merge_test_inputs"] is True


def test_the_paper_profile_merges_the_test_split_and_the_others_do_not():
    from harness.config import resolve_config

    assert resolve_config("dart", "js", "paper").data.merge_test_inputs
    assert not resolve_config("dart", "js", "cpu").data.merge_test_inputs


def test_the_cpu_student_keeps_two_decoder_layers_for_one_and_a_half_epochs():
    """The DART twin's cpu student (docs/findings.md, "The twins against the paper's regime"): with one decoder
    layer the MLE student was three times the paper's gap below the teacher; the paper profile keeps the paper's."""
    from harness.config import resolve_config
    cpu, paper = resolve_config("dart", "tvd", "cpu"), resolve_config("dart", "tvd", "paper")
    assert (cpu.student.encoder_layers, cpu.student.decoder_layers, cpu.student_train.epochs) == (2, 2, 1.5)
    assert (paper.student.encoder_layers, paper.student.decoder_layers) == (3, 1)
    assert resolve_config("dart", "mle", "ci").student.decoder_layers == 1     # the ci profile is unchanged

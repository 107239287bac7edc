"""The plugin author's kit: a task declared by its fields, read from JSON lines or CSV, scored by exact match."""

from __future__ import annotations

import json

import pytest

from harness.config import DataConfig
from harness.datasets.fields import FieldsTask
from harness.errors import HarnessError
from harness.metrics import exact_match_scores


class QA(FieldsTask):
    name = "qa_test"
    source_field, target_field = "question", "answers"
    metrics = ("exact_match",)
    selection_metric = "exact_match"

    def score(self, hypotheses, references):
        return exact_match_scores(hypotheses, references)


def task(folder) -> QA:
    return QA(DataConfig(source="local", data_dir=str(folder)))


def test_json_lines_and_csv_give_the_same_examples(tmp_path):
    rows = [{"question": "2+2?", "answers": ["4", "four"]}, {"question": "capital of France?", "answers": ["Paris"]}]
    jsonl, csv_dir = tmp_path / "jsonl", tmp_path / "csv"
    jsonl.mkdir(), csv_dir.mkdir()
    (jsonl / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (csv_dir / "test.csv").write_text("question,answers\n2+2?,4\ncapital of France?,Paris\n")
    from_jsonl, from_csv = task(jsonl).load("test"), task(csv_dir).load("test")
    assert [e.source for e in from_jsonl] == [e.source for e in from_csv] == ["2+2?", "capital of France?"]
    assert from_jsonl[0].references == ("4", "four") and from_csv[0].references == ("4",)
    (jsonl / "train.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert [e.target for e in task(jsonl).load("train")] == ["4", "four"]   # one training example per answer


@pytest.mark.parametrize("content, message", [
    ('{"question": "q"}\n', "test.jsonl: record 0: no field 'answers' (fields: question)"),
    ('{"question": "q", "answers": []}\n', "record 0: field 'answers' must be a non-empty string or a list"),
    ('{"question": 3, "answers": "a"}\n', "record 0: field 'question' must be a non-empty string, got 3"),
    ('{"question": "q", "answers": "a"}\nnot json\n', "test.jsonl: line 2 is not valid JSON"),
    ('[1, 2]\n', "record 0: expected an object"),
])
def test_a_bad_record_is_one_line_naming_file_and_record(tmp_path, content, message):
    (tmp_path / "test.jsonl").write_text(content)
    with pytest.raises(HarnessError) as info:
        task(tmp_path).load("test")
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("suffix, text", [("csv", "question,answers\n2+2?,4\n"),
                                          ("jsonl", '{"question": "2+2?", "answers": ["4"]}\n')])
def test_a_file_saved_with_a_byte_order_mark_reads_as_without(tmp_path, suffix, text):
    """Spreadsheets save CSV as UTF-8 with a byte-order mark; it is no part of the first field's name."""
    (tmp_path / f"test.{suffix}").write_text(text, encoding="utf-8-sig")
    assert (tmp_path / f"test.{suffix}").read_bytes().startswith(b"\xef\xbb\xbf")
    examples = task(tmp_path).load("test")
    assert [e.source for e in examples] == ["2+2?"] and examples[0].references == ("4",)


def test_a_csv_row_of_the_wrong_width_names_its_line(tmp_path):
    (tmp_path / "test.csv").write_text("question,answers\nq1,a1\nq2,a2,extra\n")
    with pytest.raises(HarnessError, match=r"test.csv: line 3 does not have the header's 2 cells"):
        task(tmp_path).load("test")


def test_only_the_local_source_is_declared(tmp_path):
    with pytest.raises(HarnessError, match="unknown data source 'embedded' for task qa_test; known: local"):
        QA(DataConfig()).load("test")


def test_exact_match_by_hand():
    scores = exact_match_scores(["Paris", " four ", "5"], [["paris"], ["4", "Four"], ["4"]])
    assert scores.per_example["exact_match"] == [100.0, 100.0, 0.0]
    assert scores.corpus["exact_match"] == pytest.approx(200 / 3)


def test_a_run_of_an_undeclared_source_is_refused_up_front():
    from harness.config import resolve_config
    from harness.registry import TASKS

    with TASKS.temporarily("qa_test", QA):
        with pytest.raises(HarnessError, match=r"data.source='embedded': task 'qa_test' reads only local \(--data-dir"):
            resolve_config("qa_test", "mle", "ci")
        cfg = resolve_config("qa_test", "mle", "ci", sets=[("data.source", "local"), ("data.data_dir", "x")])
        assert cfg.data.source == "local"
    assert "qa_test" not in TASKS.names()


@pytest.mark.slow
def test_a_fields_task_runs_end_to_end(tmp_path):
    """From JSON-lines files to scored runs: the kit is enough for a whole cell."""
    from harness.config import resolve_config
    from harness.pipeline import Pipeline
    from harness.registry import TASKS

    data = tmp_path / "data"
    data.mkdir()
    pairs = [(f"add {a} and {b}", str(a + b)) for a in range(12) for b in range(12)]
    for split, rows in (("train", pairs[:120]), ("validation", pairs[120:132]), ("test", pairs[132:])):
        (data / f"{split}.jsonl").write_text("".join(json.dumps({"question": q, "answers": a}) + "\n"
                                                     for q, a in rows))
    with TASKS.temporarily("qa_test", QA):
        cfg = resolve_config("qa_test", "seqkd", "ci", sets=[("data.source", "local"), ("data.data_dir", str(data)),
                                                              ("results_dir", str(tmp_path / "results"))])
        outcome = Pipeline(cfg).run()
    got = outcome.metrics.set_index(["model", "metric"])["value"]
    assert {("teacher", "exact_match"), ("seqkd", "exact_match")} <= set(got.index)
    assert 0.0 <= got[("seqkd", "exact_match")] <= 100.0

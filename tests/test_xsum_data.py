"""Tests of the XSum task: the embedded twin, the local and hub loaders, ROUGE, the profiles."""

from __future__ import annotations

import json
import random
import re
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest

from harness.config import resolve_config
from harness.metrics import rouge_scores
from harness.errors import HarnessError
from harness.registry import TASKS
from harness_tasks.xsum import XSumTask, records, twin
from harness.datasets.split_files import split_file_patterns

FIXTURES = Path(__file__).parent / "fixtures" / "xsum"
FIXTURE_FILES = {"train": "train.jsonl", "validation": "validation.json", "test": "test.jsonl"}


def copy_fixtures(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in FIXTURE_FILES.values():
        shutil.copy(FIXTURES / name, folder / name)
    return folder


def fixture_records(split: str) -> list[dict]:
    text = (FIXTURES / FIXTURE_FILES[split]).read_text(encoding="utf-8")
    return json.loads(text) if split == "validation" else [json.loads(line) for line in text.splitlines()]


def distinct_bigram_percent(texts: list[str]) -> float:
    """TeacherDist's statistic (PAPER.md Table 3): distinct bigrams / all bigrams of a set of outputs, ×100."""
    bigrams = [b for t in texts for b in zip(t.split(), t.split()[1:])]
    return 100.0 * len(set(bigrams)) / len(bigrams)


@pytest.fixture(scope="module")
def train1000() -> list[dict]:
    return twin.generate_split("train", 1000, 0)


# --------------------------------------------------------------------------- twin
def test_twin_is_deterministic_and_ignores_global_random_state():
    random.seed(1)
    a = twin.generate_split("train", 30, 7)
    random.seed(2)
    random.random()
    assert twin.generate_split("train", 30, 7) == a
    assert twin.generate_split("train", 30, 8) != a
    assert twin.generate_split("test", 20, 7) != twin.generate_split("validation", 20, 7)


def test_twin_prefix_is_stable():
    assert twin.generate_split("validation", 25, 3)[:15] == twin.generate_split("validation", 15, 3)


def test_twin_records_have_the_hub_schema(train1000):
    ids = set()
    for i, record in enumerate(train1000):
        assert set(record) == {"document", "summary", "id"}
        assert all(isinstance(v, str) for v in record.values())
        assert re.fullmatch(r"[1-9]\d{7}", record["id"])   # like XSum's BBC ids
        ids.add(record["id"])
        summary = record["summary"]
        assert (summary[0].isupper() or summary[0].isdigit()) and summary.endswith(".")
        assert summary.count(". ") == 0   # one sentence
        sentences = record["document"].split("\n")
        assert all(s.lstrip('"')[0].isupper() and s.endswith(".") for s in sentences)
        assert records.normalise_record(record, "twin", i) == record
    assert len(ids) == len(train1000)
    assert json.loads(json.dumps(train1000)) == train1000


def test_twin_documents_are_long_and_summaries_short(train1000):
    doc_words = [len(r["document"].split()) for r in train1000]
    summary_words = [len(r["summary"].split()) for r in train1000]
    assert min(doc_words) >= twin.DOCUMENT_WORDS[0]        # the XSum-like bench needs long sources
    assert max(doc_words) <= twin.DOCUMENT_WORDS[1] + 20
    assert 8 <= statistics.mean(summary_words) <= 20 and max(summary_words) <= 30


def test_twin_has_every_event_kind_and_a_small_vocabulary(train1000):
    events = twin.sample_events("train", 1000, 0)
    kinds = {e.kind for e in events}
    assert kinds == set(twin.EVENTS_BY_NAME) and len(kinds) == 10
    words = {w for r in train1000 for w in re.findall(r"\w+|[^\w\s]", r["document"] + " " + r["summary"])}
    assert len(words) < 1500


def test_twin_summary_is_supported_by_the_document(train1000):
    """Names and numbers of the summary occur early in the document: the key event is findable,
    also in a source cut at 256 tokens (the cpu profile)."""
    for record in train1000:
        document = " ".join(record["document"].split()[:twin.EVENT_WITHIN_WORDS])
        tokens = record["summary"].rstrip(".").split()
        for token in tokens[1:]:
            token = token.strip(",")
            if token[0].isupper() or token[0].isdigit():
                assert token in document, (token, record["summary"])


def test_twin_event_sentences_come_first():
    world, rng = twin.build_world(0), random.Random(1)
    for event in twin.sample_events("train", 500, 0):
        kind, facts = twin.EVENTS_BY_NAME[event.kind], event.fact_dict
        sentences = twin.compose_document(kind, facts, world, rng).split("\n")
        own = {twin.fill(t, facts, rng) for t in kind.details + kind.context}  # templates without synonyms
        assert own <= set(sentences)
        last = max(i for i, s in enumerate(sentences) if s in own)
        assert sum(len(s.split()) for s in sentences[: last + 1]) <= twin.EVENT_WITHIN_WORDS
        assert any(sentences[i] == twin.fill(lead, facts, rng) for lead in kind.leads for i in range(3))


def test_twin_splits_are_disjoint():
    keys = {s: {(e.kind, e.facts) for e in twin.sample_events(s, n, 0)}
            for s, n in (("train", 2000), ("validation", 200), ("test", 200))}
    assert not keys["train"] & keys["validation"]
    assert not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    event_keys = {s: {twin.event_key(twin.EVENTS_BY_NAME[k], dict(f)) for k, f in v} for s, v in keys.items()}
    assert not event_keys["train"] & event_keys["test"]
    documents = {s: {r["document"] for r in twin.generate_split(s, 100, 0)} for s in ("train", "test")}
    assert not documents["train"] & documents["test"]


def test_twin_unknown_split_and_bad_size():
    with pytest.raises(ValueError):
        twin.generate_split("dev", 3, 0)
    with pytest.raises(ValueError):
        twin.generate_split("train", -1, 0)


def _dart_twin_distinct_bigrams(n: int) -> float:
    from harness_tasks.dart import twin as dart_twin

    world = dart_twin._build_world(0)
    rng = random.Random(1)
    return statistics.mean(
        distinct_bigram_percent([dart_twin._realise(r["tripleset"], world, rng) for _ in range(5)])
        for r in dart_twin.generate_split("test", n, 0))


def test_twin_summaries_are_more_varied_than_dart_and_far_from_dialogue():
    """Five draws from the summary distribution per input: clearly more distinct bigrams
    than five DART twin references (PAPER Table 3: XSum 36 > DART 26), far below dialogue (81)."""
    rng = random.Random(5)
    xsum = statistics.mean(distinct_bigram_percent([twin.sample_summary(e, rng) for _ in range(5)])
                           for e in twin.sample_events("test", 200, 0))
    dart = _dart_twin_distinct_bigrams(200)
    assert xsum > dart + 5, (xsum, dart)
    assert xsum < 70
    # Several valid summaries per input, one of them the commonest.
    assert abs(sum(twin.SUMMARY_WEIGHTS) - 1) < 1e-9 and twin.SUMMARY_WEIGHTS[0] == max(twin.SUMMARY_WEIGHTS)
    assert all(len(kind.summaries) == len(twin.SUMMARY_WEIGHTS) for kind in twin.EVENTS)


def test_fill_synonyms_and_facts():
    rng = random.Random(0)
    seen = {twin.fill("{firm} will {~close} it.", {"firm": "Acme Group"}, rng) for _ in range(50)}
    assert seen == {"Acme Group will close it.", "Acme Group will shut it."}
    assert twin.fill("{x} rose.", {"x": "prices"}, rng) == "Prices rose."


# --------------------------------------------------------------------------- records → examples
def test_records_to_examples():
    recs = [{"document": "First line.\nSecond  line. ", "summary": " A summary. ", "id": "7"},
            {"document": "", "summary": "Empty document.", "id": "8"},
            {"document": "Text.", "summary": "   ", "id": "9"}]
    examples = records.records_to_examples(recs, "validation")
    assert len(examples) == 1
    e = examples[0]
    assert (e.id, e.source, e.target, e.references) == ("xsum-validation-7", "First line. Second line.",
                                                          "A summary.", ("A summary.",))
    with pytest.raises(HarnessError, match="unknown XSum split"):
        records.records_to_examples(recs, "dev")


def test_twin_examples_through_the_task():
    cfg = resolve_config("xsum", "js", "ci")
    task = XSumTask(cfg.data)
    examples = task.load("test")
    assert len(examples) == cfg.data.test_size
    assert all("\n" not in e.source and e.references == (e.target,) for e in examples)


# --------------------------------------------------------------------------- local files
@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_load_local_fixture_files(split, tmp_path):
    folder = copy_fixtures(tmp_path / "xsum")
    got = records.load_local(folder, split)
    assert got == fixture_records(split)
    examples = records.records_to_examples(got, split)
    assert len(examples) == len(got) >= 3


def test_local_formats_parquet_and_hub_shards(tmp_path):
    expected = fixture_records("train")
    single = tmp_path / "single"
    single.mkdir()
    pd.DataFrame(expected).to_parquet(single / "train.parquet")
    assert records.load_local(single, "train") == expected
    # The hub's shard layout, in a config folder as the parquet export has it.
    shards = tmp_path / "shards" / "default" / "train"
    shards.mkdir(parents=True)
    pd.DataFrame(expected[:2]).to_parquet(shards / "0000.parquet")
    pd.DataFrame(expected[2:]).to_parquet(shards / "0001.parquet")
    assert records.load_local(tmp_path / "shards", "train") == expected
    # Dataset.to_json writes JSON lines even into a .json file.
    lines = tmp_path / "lines"
    lines.mkdir()
    (lines / "train.json").write_text("\n".join(json.dumps(r) for r in expected) + "\n")
    assert records.load_local(lines, "train") == expected


def test_local_integer_ids_and_missing_ids(tmp_path):
    (tmp_path / "test.jsonl").write_text('{"document": "D.", "summary": "S.", "id": 12}\n'
                                         '{"document": "E.", "summary": "T."}\n')
    assert records.load_local(tmp_path, "test") == [{"document": "D.", "summary": "S.", "id": "12"},
                                                    {"document": "E.", "summary": "T.", "id": "1"}]


def test_local_missing_folder_file_and_ambiguous_files(tmp_path):
    with pytest.raises(HarnessError, match="does not exist") as info:
        records.load_local(tmp_path / "nowhere", "train")
    assert "train.jsonl" in str(info.value)
    folder = copy_fixtures(tmp_path / "partial")
    (folder / "test.jsonl").unlink()
    with pytest.raises(HarnessError) as info:
        records.load_local(folder, "test")
    text = str(info.value)
    assert text.startswith("XSum test file not found in ") and "\n" not in text
    assert all(p in text for p in split_file_patterns("test", records.LOCAL_SUBFOLDERS))
    shutil.copy(FIXTURES / "train.jsonl", folder / "train.json")
    with pytest.raises(HarnessError, match=r"XSum train: several candidate files .*train\.json.*keep one"):
        records.load_local(folder, "train")
    with pytest.raises(HarnessError, match="no XSum data directory"):
        records.load_local(None, "train")


def _good(n: int = 4) -> list[dict]:
    return [{"document": f"Document {i}.", "summary": f"Summary {i}.", "id": str(i)} for i in range(n)]


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.pop("document"), "missing required field(s) 'document'"),
    (lambda r: r.pop("summary"), "missing required field(s) 'summary'"),
    (lambda r: r.update(document=None), "'document' must be a string, got NoneType"),
    (lambda r: r.update(summary=["a", "b"]), "'summary' must be a string, got list"),
    (lambda r: r.update(id=1.5), "'id' must be a string or an integer"),
    (lambda r: r.update(id=True), "'id' must be a string or an integer"),
])
def test_bad_record_names_the_file_and_the_record(tmp_path, mutate, message):
    rows = _good()
    mutate(rows[2])
    path = tmp_path / "validation.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(HarnessError) as info:
        records.load_local(tmp_path, "validation")
    text = str(info.value)
    assert text.startswith(f"{path}: record 2: ") and message in text and "\n" not in text


def test_first_bad_record_is_reported_and_non_objects_rejected(tmp_path):
    rows = _good(6)
    rows[4].pop("summary")
    rows[1] = ["not", "an", "object"]
    (tmp_path / "train.json").write_text(json.dumps(rows))
    with pytest.raises(HarnessError, match=r"train\.json: record 1: must be a JSON object"):
        records.load_local(tmp_path, "train")


def test_bad_record_in_a_parquet_file(tmp_path):
    rows = _good()
    pd.DataFrame([{**r, "summary": None if i == 3 else r["summary"]} for i, r in enumerate(rows)]).to_parquet(
        tmp_path / "test.parquet")
    with pytest.raises(HarnessError, match=r"test\.parquet: record 3: 'summary' must be a string"):
        records.load_local(tmp_path, "test")


@pytest.mark.parametrize("name,content,message", [
    ("train.jsonl", "", "file is empty"),
    ("train.jsonl", '{"document": "a", "summary": "b"}\n{"document": \n', "line 2 is not valid JSON"),
    ("train.json", "[]", "contains no records"),
    ("train.json", '"text"', "expected a JSON list of records"),
    ("train.json", "[{", "not valid JSON"),
    ("train.parquet", "not parquet", "not a readable parquet file"),
])
def test_bad_files(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(HarnessError) as info:
        records.load_local(tmp_path, "train")
    text = str(info.value)
    assert name in text and message in text and "\n" not in text


# --------------------------------------------------------------------------- hub


def test_load_hub_from_a_local_parquet_folder(tmp_path, no_network):
    hub = tmp_path / "xsum-hub"
    hub.mkdir()
    expected = {}
    for split, n in (("train", 6), ("validation", 3), ("test", 3)):
        expected[split] = twin.generate_split(split, n, 0)
        pd.DataFrame(expected[split]).to_parquet(hub / f"{split}-00000-of-00001.parquet")
    for split in expected:
        assert records.load_hub(str(hub), None, split) == expected[split]


def test_load_hub_reports_bad_rows(tmp_path, no_network):
    hub = tmp_path / "xsum-hub"
    hub.mkdir()
    rows = twin.generate_split("test", 3, 0)
    frame = pd.DataFrame(rows).drop(columns=["summary"])
    frame.to_parquet(hub / "test-00000-of-00001.parquet")
    with pytest.raises(HarnessError, match=r"xsum-hub \[test\]: record 0: missing required field\(s\) 'summary'"):
        records.load_hub(str(hub), None, "test")


def test_load_hub_offline_is_one_line_error(no_network):
    with pytest.raises(HarnessError) as info:
        records.load_hub("harness-tests/no-such-xsum", "refs/convert/parquet", "validation")
    err = info.value
    text = str(err)
    assert text.startswith("could not load XSum from the hub ('harness-tests/no-such-xsum', "
                           "revision 'refs/convert/parquet'): ")
    assert "--data-dir DIR" in text and "data.source=local" in text and "\n" not in text
    assert err.__cause__ is None and err.__suppress_context__


# --------------------------------------------------------------------------- metrics
def test_rouge_scores_match_rouge_score():
    from rouge_score import rouge_scorer

    hyps = ["The firm is to close its factory in Kelford.", "Police arrested a man.", ""]
    refs = [["Kelford factory to close with the loss of 200 jobs."],
            ["A man has been arrested after a robbery.", "Police have arrested a man after a robbery."],
            ["Something."]]
    scores = rouge_scores(hyps, refs)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for name in ("rouge1", "rouge2", "rougeL"):
        direct = [100 * max(scorer.score(r, h)[name].fmeasure for r in rs) for h, rs in zip(hyps, refs)]
        assert scores.per_example[name] == pytest.approx(direct)
        assert scores.corpus[name] == pytest.approx(sum(direct) / len(direct))
        assert "porter" in scores.signatures[name] and "rouge_score:0.1" in scores.signatures[name]
    # Stemming: "arrested"/"arrest" match; the second reference is the better one for example 2.
    assert scores.per_example["rouge1"][1] == pytest.approx(
        100 * scorer.score(refs[1][1], hyps[1])["rouge1"].fmeasure)
    assert scores.per_example["rouge2"][2] == 0.0
    assert rouge_scores(["a b c"], [["a b c"]]).corpus["rouge2"] == pytest.approx(100.0)


def test_task_scores_with_rouge():
    task = XSumTask(resolve_config("xsum", "js", "ci").data)
    scores = task.score(["The cat sat."], [["The cat sat down."]])
    assert set(scores.corpus) == {"rouge1", "rouge2", "rougeL"} == set(XSumTask.metrics)
    assert XSumTask.selection_metric == "rouge2" and not XSumTask.lower_is_better


# --------------------------------------------------------------------------- config
def test_xsum_is_registered_with_its_beta():
    assert TASKS.get("xsum") is XSumTask
    assert resolve_config("xsum", "js", "cpu").method_params["beta"] == 0.85


def test_paper_decoding():
    """The cpu profile decodes as the paper tests (beam 6, length penalty 0.5); the paper profile's own recipe
    (pseudo-labels with bart-large-xsum's length penalty 1.0) is held by tests/test_paper_recipe.py."""
    cfg = resolve_config("xsum", "js", "cpu")
    for decode in (cfg.pseudo_labels, cfg.eval_decode, cfg.selection_decode):
        assert decode.num_beams == 6 and decode.length_penalty == 0.5
    paper = resolve_config("xsum", "js", "paper")
    assert (paper.eval_decode.num_beams, paper.eval_decode.length_penalty) == (6, 0.5)


def test_ci_profile_stays_tiny():
    cfg = resolve_config("xsum", "js", "ci")
    assert (cfg.data.train_size, cfg.data.test_size, cfg.teacher.d_model) == (40, 10, 32)
    assert cfg.eval_decode.num_beams == 2 and cfg.eval_decode.length_penalty == 0.5


def test_paper_profile_names_the_papers_models():
    cfg = resolve_config("xsum", "js", "paper")
    assert cfg.data.source == "hub"
    assert (cfg.teacher.pretrained, cfg.teacher.family, cfg.teacher_train.epochs) == ("facebook/bart-large-xsum",
                                                                                     "bart", 0)
    assert (cfg.student.encoder_layers, cfg.student.decoder_layers) == (3, 3)
    assert (cfg.tokenizer.max_source_tokens, cfg.tokenizer.max_target_tokens) == (1024, 60)
    assert cfg.pseudo_labels.max_new_tokens == 62 and cfg.eval_decode.max_new_tokens == 62   # bart-large-xsum's



# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_ci_cell_writes_rouge_rows(ci_grid):
    """The session's ci grid's JS cell."""
    from conftest import CI_GRID_SETS, ci_grid_config
    from harness.pipeline.graph import run_id

    root, _ = ci_grid
    folder = root / "runs" / run_id(ci_grid_config("xsum", "js"))
    metrics = pd.read_parquet(folder / "metrics.parquet")
    assert {"teacher", "predistill", "js"} <= set(metrics["model"])
    for model in ("teacher", "predistill", "js"):
        got = metrics[metrics["model"] == model]
        assert {"rouge1", "rouge2", "rougeL", "r_llh", "r_cvg"} <= set(got["metric"])
        assert got["value"].notna().all()
    assert (metrics["task"] == "xsum").all()
    assert metrics.loc[metrics["metric"] == "rouge2", "signature"].str.startswith("rouge_score:").all()
    examples = pd.read_parquet(folder / "examples.parquet")
    assert len(examples[examples["model"] == "js"]) == int(CI_GRID_SETS["data.test_size"])
    assert {"score_rouge1", "score_rouge2", "score_rougeL"} <= set(examples.columns)
    assert json.loads((folder / "manifest.json").read_text())["config"]["method_params"]["beta"] == 0.85

"""Tests of the WMT16 English→Romanian task: the twin and its translation rules, the loaders,
the T5 prefix, the metrics, the profiles (β, Adafactor, the 100k subset)."""

from __future__ import annotations

import collections
import json
import random
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest

from harness.config import resolve_config
from harness.metrics import sacrebleu_scores
from harness.errors import HarnessError
from harness.registry import TASKS
from harness_tasks.wmt16_en_ro import WMT16EnRoTask, records, twin
from harness_tasks.wmt16_en_ro.twin import Clause, NounPhrase

FIXTURES = Path(__file__).parent / "fixtures" / "wmt16_en_ro"
SPLITS = ("train", "validation", "test")


def copy_fixtures(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        shutil.copy(FIXTURES / f"{split}.jsonl", folder / f"{split}.jsonl")
    return folder


def fixture_records(split: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def distinct_bigram_percent(texts: list[str]) -> float:
    """TeacherDist's statistic (PAPER.md Table 3): distinct bigrams / all bigrams of a set of outputs, ×100."""
    bigrams = [b for t in texts for b in zip(t.split(), t.split()[1:])]
    return 100.0 * len(set(bigrams)) / len(bigrams)


@pytest.fixture(scope="module")
def lexicon() -> twin.Lexicon:
    return twin.build_lexicon(0)


# --------------------------------------------------------------------------- twin
def test_twin_is_deterministic_and_ignores_global_random_state():
    random.seed(1)
    a = twin.generate_split("train", 50, 7)
    random.seed(2)
    random.random()
    assert twin.generate_split("train", 50, 7) == a
    assert twin.generate_split("train", 50, 8) != a
    assert twin.build_lexicon(7) == twin.build_lexicon(7) != twin.build_lexicon(8)


def test_twin_prefix_is_stable():
    assert twin.generate_split("test", 40, 3)[:25] == twin.generate_split("test", 25, 3)


def test_twin_records_have_the_hub_schema():
    recs = twin.generate_split("train", 500, 0)
    for i, record in enumerate(recs):
        assert set(record) == {"translation"} and set(record["translation"]) == {"en", "ro"}
        for text in record["translation"].values():
            assert text[0].isupper() and text.endswith(".") and ".." not in text
        assert records.normalise_record(record, "twin", i) == record
    assert len({r["translation"]["en"] for r in recs}) == len(recs)
    assert json.loads(json.dumps(recs)) == recs


def test_twin_splits_are_disjoint():
    english = {s: {r["translation"]["en"] for r in twin.generate_split(s, n, 0)}
               for s, n in (("train", 3000), ("validation", 300), ("test", 300))}
    assert not english["train"] & english["validation"]
    assert not english["train"] & english["test"]
    assert not english["validation"] & english["test"]
    assert all(twin.split_of(e) == "test" for e in english["test"])


def test_twin_unknown_split_and_bad_size():
    with pytest.raises(ValueError):
        twin.generate_split("dev", 3, 0)
    with pytest.raises(ValueError):
        twin.sample_inputs("train", -1, 0)


def test_twin_sizes_and_vocabulary():
    recs = twin.generate_split("train", 2000, 0)
    english_words = {w.strip(".,").lower() for r in recs for w in r["translation"]["en"].split()}
    assert 200 <= len(english_words) <= 500          # a few hundred words (inflected forms included)
    lengths = [len(r["translation"]["en"].split()) for r in recs]
    assert 6 <= statistics.mean(lengths) <= 14 and max(lengths) <= 30


def test_lexicon_has_only_a_few_synonyms(lexicon):
    entries = [o for _g, o in lexicon.nouns.values()] + list(lexicon.adjectives.values()) + list(lexicon.verbs.values())
    with_synonym = sum(len(o) == 2 for o in entries)
    assert 0 < with_synonym <= 0.2 * len(entries)
    assert all(1 <= len(o) <= 2 for o in entries)
    stems = [s for o in entries for s in o]
    assert len(set(stems)) == len(stems)   # no two words share a target stem


def test_most_stems_are_cognates(lexicon):
    words = ([(n, o[0]) for n, (_g, o) in lexicon.nouns.items()] + [(a, o[0]) for a, o in lexicon.adjectives.items()]
             + [(v, o[0]) for v, o in lexicon.verbs.items()])
    cognates = sum(stem == word for word, stem in words)
    assert 0.7 * len(words) < cognates < 0.95 * len(words)


def test_translation_is_nearly_deterministic():
    """Five translations per input: mostly identical (PAPER Table 3: WMT has the lowest TeacherDist)."""
    lex, rng = twin.build_lexicon(0), random.Random(5)
    sentences = twin.sample_inputs("test", 300, 0)
    draws = [[twin.translate(s, lex, rng) for _ in range(5)] for s in sentences]
    one_output = sum(len(set(d)) == 1 for d in draws) / len(draws)
    assert one_output > 0.4
    assert max(len(set(d)) for d in draws) <= 5
    wmt = statistics.mean(distinct_bigram_percent(d) for d in draws)
    assert 20 <= wmt < 26   # 20 is the floor: five identical outputs


def test_translation_is_less_varied_than_dart():
    from harness_tasks.dart import twin as dart_twin

    world, rng = dart_twin._build_world(0), random.Random(1)
    dart = statistics.mean(distinct_bigram_percent([dart_twin._realise(r["tripleset"], world, rng) for _ in range(5)])
                           for r in dart_twin.generate_split("test", 200, 0))
    lex = twin.build_lexicon(0)
    wmt = statistics.mean(distinct_bigram_percent([twin.translate(s, lex, rng) for _ in range(5)])
                          for s in twin.sample_inputs("test", 200, 0))
    assert wmt + 10 < dart, (wmt, dart)


# --------------------------------------------------------------------------- translation rules
def _main(options: tuple[str, ...]) -> str:
    return options[0]


class _NoSynonyms(random.Random):
    """An rng that never picks a synonym, so rule tests see the main translations only."""

    def random(self) -> float:
        return 0.99


def _noun(lex, noun, number="sg", case="def"):
    gender, options = lex.nouns[noun]
    return twin.noun_form(_main(options), gender, number, case), gender


def _adj(lex, adjective, gender, number="sg"):
    return twin.adjective_form(_main(lex.adjectives[adjective]), gender, number)


def _say(lex, clauses, conjunction=""):
    return twin.Translator(lex, _NoSynonyms()).sentence(clauses, conjunction)


def test_inflection_tables():
    assert twin.noun_form("dom", "m", "sg", "def") == "domul"
    assert twin.noun_form("dom", "m", "pl", "gen") == "domilor"
    assert twin.noun_form("cas", "f", "sg", "bare") == "cas"
    assert twin.noun_form("cas", "f", "sg", "def") == "casa"
    assert twin.noun_form("cas", "f", "pl", "def") == "casele"
    assert twin.adjective_form("mar", "f", "pl") == "mare"
    assert twin.verb_form("vind", "present", "3sg") == ["vindeste"]
    assert twin.verb_form("vind", "past", "3pl") == ["au", "vindit"]
    assert twin.verb_form("vind", "future", "1pl") == ["vom", "vindi"]
    assert twin.english_plural("box") == "boxes" and twin.english_plural("city") == "cities"
    assert twin.english_plural("child") == "children" and twin.english_third_person("carry") == "carries"


def test_definite_article_suffix_and_adjective_after_noun(lexicon):
    np = NounPhrase("house", adjectives=("big",))
    clause = Clause(np, "sleep", "present", preposition="in", prep_object=NounPhrase("garden"))
    house, g = _noun(lexicon, "house")
    verb = _main(lexicon.verbs["sleep"]) + "este"
    garden_bare, _ = _noun(lexicon, "garden", case="bare")
    expected = f"{house} {_adj(lexicon, 'big', g)} {verb} in {garden_bare}."
    assert _say(lexicon, [clause]) == expected[0].upper() + expected[1:]
    assert twin.english([clause]) == "The big house sleeps in the garden."


def test_article_kept_after_preposition_when_an_adjective_follows(lexicon):
    clause = Clause("I", "walk", "past", preposition="near", prep_object=NounPhrase("park", adjectives=("old",)))
    park, g = _noun(lexicon, "park")
    assert _say(lexicon, [clause]) == (f"Am {_main(lexicon.verbs['walk'])}it langa {park} "
                                       f"{_adj(lexicon, 'old', g)}.")
    assert twin.english([clause]) == "I walked near the old park."


def test_pronoun_drop_negation_future_and_time(lexicon):
    obj = NounPhrase("letter", determiner="a")
    clause = Clause("they", "write", "future", negated=True, obj=obj, time="tomorrow")
    gender, options = lexicon.nouns["letter"]
    article = {"m": "un", "f": "o"}[gender]
    expected = (f"Nu vor {_main(lexicon.verbs['write'])}i {article} "
                f"{twin.noun_form(_main(options), gender, 'sg', 'bare')} maine.")
    assert _say(lexicon, [clause]) == expected
    assert twin.english([clause]) == "They will not write a letter tomorrow."


def test_possessives_genitive_and_names(lexicon):
    of = NounPhrase("door", of=NounPhrase("castle"))
    mine = NounPhrase("car", plural=True, determiner="possessive", possessive="my")
    names = NounPhrase("dog", determiner="name", possessive="Ana")
    clause = Clause(of, "see", "present", obj=mine)
    door, _ = _noun(lexicon, "door")
    castle_gen, _ = _noun(lexicon, "castle", case="gen")
    cars, g = _noun(lexicon, "car", number="pl")
    poss = twin.POSSESSIVE_FORMS["my"][(g, "pl")]
    expected = f"{door} {castle_gen} {_main(lexicon.verbs['see'])}este {cars} {poss}."
    assert _say(lexicon, [clause]) == expected[0].upper() + expected[1:]
    assert twin.english([clause]) == "The door of the castle sees my cars."
    dog, _ = _noun(lexicon, "dog")
    clause = Clause("Radu", "love", "past", obj=names)
    assert _say(lexicon, [clause]) == f"Radu a {_main(lexicon.verbs['love'])}it {dog} lui Ana."
    assert twin.english([clause]) == "Radu loved Ana's dog."


def test_two_clauses_with_a_conjunction(lexicon):
    first = Clause("we", "wait", "present", preposition="to", prep_object=NounPhrase("station"))
    second = Clause("she", "rest", "present", preposition="under", prep_object=NounPhrase("bridge"))
    text = _say(lexicon, [first, second], "because")
    assert ", pentru ca " in text and text.count(".") == 1
    assert twin.english([first, second], "because") == "We wait to the station, because she rests under the bridge."


def test_synonyms_are_the_only_variation(lexicon):
    """Translations of one input differ only where a word has a second translation."""
    rng = random.Random(3)
    for sentence in twin.sample_inputs("validation", 100, 0):
        outputs = {twin.translate(sentence, lexicon, rng) for _ in range(20)}
        main = twin.Translator(lexicon, _NoSynonyms()).sentence(list(sentence.clauses), sentence.conjunction)
        assert main in outputs
        assert all(len(o.split()) == len(main.split()) for o in outputs)


# --------------------------------------------------------------------------- records → examples
def test_records_to_examples_add_the_t5_prefix():
    recs = [{"translation": {"en": " Good morning. ", "ro": "Bună dimineața."}},
            {"translation": {"en": "", "ro": "Gol."}}]
    examples = records.records_to_examples(recs, "test")
    assert len(examples) == 1
    e = examples[0]
    assert e.source == "translate English to Romanian: Good morning."
    assert (e.id, e.target, e.references) == ("wmt16-test-0", "Bună dimineața.", ("Bună dimineața.",))
    assert records.T5_PREFIX == "translate English to Romanian: "
    with pytest.raises(HarnessError, match="unknown WMT16 split"):
        records.records_to_examples(recs, "newstest2016")


def test_twin_examples_through_the_task():
    cfg = resolve_config("wmt16_en_ro", "js", "ci")
    examples = WMT16EnRoTask(cfg.data).load("validation")
    assert len(examples) == cfg.data.validation_size
    assert all(e.source.startswith(records.T5_PREFIX) and not e.target.startswith("translate") for e in examples)


# --------------------------------------------------------------------------- local files
@pytest.mark.parametrize("split", SPLITS)
def test_load_local_fixture_files(split, tmp_path):
    folder = copy_fixtures(tmp_path / "wmt")
    got = records.load_local(folder, split)
    assert got == fixture_records(split) and len(got) >= 3
    assert all(e.source.startswith(records.T5_PREFIX) for e in records.records_to_examples(got, split))


def test_local_hub_shard_layout_and_extra_languages(tmp_path):
    expected = fixture_records("train")
    shards = tmp_path / "copy" / "ro-en"
    shards.mkdir(parents=True)
    pd.DataFrame(expected).to_parquet(shards / "train-00000-of-00001.parquet")
    assert records.load_local(tmp_path / "copy", "train") == expected
    (tmp_path / "test.jsonl").write_text(json.dumps({"translation": {"en": "A.", "ro": "B.", "de": "C."},
                                                     "extra": 1}) + "\n")
    assert records.load_local(tmp_path, "test") == [{"translation": {"en": "A.", "ro": "B."}}]


def test_local_missing_file_lists_accepted_names(tmp_path):
    folder = copy_fixtures(tmp_path / "wmt")
    (folder / "validation.jsonl").unlink()
    with pytest.raises(HarnessError) as info:
        records.load_local(folder, "validation")
    text = str(info.value)
    assert text.startswith("WMT16 en-ro validation file not found in ")
    assert "validation.jsonl" in text and "ro-en/validation-*.parquet" in text and "\n" not in text


@pytest.mark.parametrize("record,message", [
    ({"en": "A.", "ro": "B."}, "missing required field 'translation'"),
    ({"translation": "A. B."}, "'translation' must be an object"),
    ({"translation": {"en": "A."}}, "'translation' has no 'ro' text"),
    ({"translation": {"ro": "B."}}, "'translation' has no 'en' text"),
    ({"translation": {"en": "A.", "ro": None}}, "'translation.ro' must be a string, got NoneType"),
    ({"translation": {"en": 3, "ro": "B."}}, "'translation.en' must be a string, got int"),
    (["A.", "B."], "must be a JSON object"),
])
def test_bad_record_names_the_file_and_the_record(tmp_path, record, message):
    rows = fixture_records("train")
    rows.insert(3, record)
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(HarnessError) as info:
        records.load_local(tmp_path, "train")
    text = str(info.value)
    assert text.startswith(f"{path}: record 3: ") and message in text and "\n" not in text


# --------------------------------------------------------------------------- hub


_HUB_README = """---
configs:
- config_name: ro-en
  data_files:
  - split: train
    path: ro-en/train-*
  - split: validation
    path: ro-en/validation-*
  - split: test
    path: ro-en/test-*
---
"""


def test_load_hub_from_a_local_folder_in_the_hub_layout(tmp_path, no_network):
    """The hub repository's layout: one folder per language pair, declared as configs in the README."""
    hub = tmp_path / "wmt16"
    (hub / "ro-en").mkdir(parents=True)
    (hub / "README.md").write_text(_HUB_README)
    expected = {}
    for split, n in (("train", 8), ("validation", 3), ("test", 3)):
        expected[split] = twin.generate_split(split, n, 0)
        pd.DataFrame(expected[split]).to_parquet(hub / "ro-en" / f"{split}-00000-of-00001.parquet")
    for split in expected:
        assert records.load_hub(str(hub), "ro-en", None, split) == expected[split]
    with pytest.raises(HarnessError, match=r"config 'de-en'.*BuilderConfig 'de-en' not found"):
        records.load_hub(str(hub), "de-en", None, "test")


def test_load_hub_offline_is_one_line_error(no_network):
    with pytest.raises(HarnessError) as info:
        records.load_hub("harness-tests/no-such-wmt", "ro-en", None, "test")
    err = info.value
    text = str(err)
    assert text.startswith("could not load WMT16 from the hub ('harness-tests/no-such-wmt', config 'ro-en', "
                           "revision None): ")
    assert "--data-dir DIR" in text and '{"translation": {"en": ..., "ro": ...}}' in text and "\n" not in text
    assert err.__cause__ is None and err.__suppress_context__


# --------------------------------------------------------------------------- metrics
def test_metrics_are_sacrebleu():
    from sacrebleu.metrics import BLEU, CHRF, TER

    hyps = ["Casa mare este veche.", "Am vazut un caine.", "Nimic."]
    refs = [["Casa mare e veche."], ["Am vazut un caine."], ["Ceva."]]
    task = WMT16EnRoTask(resolve_config("wmt16_en_ro", "js", "ci").data)
    scores = task.score(hyps, refs)
    streams = [[r[0] for r in refs]]
    assert scores.corpus["bleu"] == pytest.approx(BLEU().corpus_score(hyps, streams).score)
    assert scores.corpus["chrf"] == pytest.approx(CHRF().corpus_score(hyps, streams).score)
    assert scores.corpus["ter"] == pytest.approx(TER().corpus_score(hyps, streams).score)
    assert scores.per_example["bleu"][1] == pytest.approx(100.0)
    assert scores.signatures["bleu"].startswith("nrefs:1")
    assert scores == sacrebleu_scores(hyps, refs)
    assert WMT16EnRoTask.selection_metric == "bleu" and WMT16EnRoTask.lower_is_better == {"ter"}


# --------------------------------------------------------------------------- config
def test_registered_with_the_wmt_beta():
    assert TASKS.get("wmt16_en_ro") is WMT16EnRoTask
    assert resolve_config("wmt16_en_ro", "js", "cpu").method_params["beta"] == 0.25
    assert resolve_config("wmt16_en_ro", "js", "cpu", sets=[("method.beta", "0.5")]).method_params["beta"] == 0.5


def test_cpu_profile_decodes_with_beam_5():
    cfg = resolve_config("wmt16_en_ro", "mle", "cpu")
    assert cfg.pseudo_labels.num_beams == cfg.eval_decode.num_beams == cfg.selection_decode.num_beams == 5


def test_paper_profile():
    cfg = resolve_config("wmt16_en_ro", "js", "paper")
    assert cfg.data.source == "hub" and cfg.data.train_subset == 100_000
    assert (cfg.teacher.pretrained, cfg.teacher.family) == ("google-t5/t5-base", "t5")
    assert cfg.teacher_train.epochs > 0                       # T5-base is fine-tuned
    assert (cfg.student.encoder_layers, cfg.student.decoder_layers) == (3, 1)
    assert {cfg.teacher_train.optimizer, cfg.student_train.optimizer, cfg.kd_train.optimizer} == {"adafactor"}
    assert cfg.eval_decode.num_beams == cfg.pseudo_labels.num_beams == 5


def test_train_subset_is_seeded_and_keeps_evaluation_splits(tmp_path):
    from harness.pipeline import Pipeline

    def load(subset, seed=0):
        sets = [("results_dir", str(tmp_path)), ("data.train_subset", str(subset)), ("data.seed", str(seed))]
        pipeline = Pipeline(resolve_config("wmt16_en_ro", "mle", "ci", sets=sets))
        pipeline.load_data()
        return pipeline.outputs["data"]

    a, b, c = load(15), load(15), load(15, seed=1)
    assert len(a["train"]) == 15 and [e.id for e in a["train"]] == [e.id for e in b["train"]]
    assert [e.source for e in c["train"]] != [e.source for e in a["train"]]
    assert len(a["test"]) == 10 and len(a["validation"]) == 8
    assert not any(tmp_path.iterdir())   # loading data writes nothing



# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_ci_cell_writes_bleu_rows(ci_grid):
    """The session's ci grid's JS cell."""
    from conftest import CI_GRID_SETS, ci_grid_config
    from harness.pipeline.graph import run_id

    root, _ = ci_grid
    folder = root / "runs" / run_id(ci_grid_config("wmt16_en_ro", "js"))
    metrics = pd.read_parquet(folder / "metrics.parquet")
    assert {"teacher", "predistill", "js"} <= set(metrics["model"])
    for model in ("teacher", "predistill", "js"):
        got = metrics[metrics["model"] == model]
        assert {"bleu", "chrf", "ter", "r_llh", "r_cvg"} <= set(got["metric"])
        assert got["value"].notna().all()
    assert (metrics["task"] == "wmt16_en_ro").all()
    examples = pd.read_parquet(folder / "examples.parquet")
    js = examples[examples["model"] == "js"]
    assert len(js) == int(CI_GRID_SETS["data.test_size"]) and js["source"].str.startswith(records.T5_PREFIX).all()
    assert json.loads((folder / "manifest.json").read_text())["config"]["method_params"]["beta"] == 0.25
    counts = collections.Counter(metrics["model"])
    assert counts["js"] == counts["predistill"]

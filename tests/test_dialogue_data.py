"""Tests of the Commonsense-Dialogues task: the embedded twin, the release/hub readers,
the (context + previous turns → next turn) pairing, the metrics and the task's profiles."""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import re
from pathlib import Path

import pytest

from harness.config import resolve_config
from harness.errors import HarnessError
from harness.registry import TASKS
from harness.task import Example
from harness_tasks.commonsense_dialogue import CommonsenseDialogueTask, twin
from harness_tasks.commonsense_dialogue.records import (
    MAX_HISTORY_TURNS,
    RELEASE_FILES,
    SEPARATOR,
    Dialogue,
    count_pairs,
    dialogue_pairs,
    dialogues_to_examples,
    format_source,
    load_hub,
    load_local,
    normalise_dialogue,
    read_release_json,
)

# Hand-written dialogues (none taken from the release), in the release schema under the release's
# file names; `release` writes them out as the release's JSON files in a temporary folder.
HANDWRITTEN = {
    "train.json": {
        "1": {"context": "Addison planted a vegetable garden behind the house and grew far too many tomatoes.", "speaker": "Addison",
              "turns": [
                  "I have more tomatoes than I know what to do with.",
                  "That sounds like a good problem to have! Have you tried making sauce?",
                  "I made three jars last night and there are still baskets left.",
                  "You could give some to the neighbors. They would love fresh tomatoes.",
                  "That's a great idea, I'll bring some over after lunch.",
                  "Save a few for me too!",
              ]},
        "2": {"context": "Addison planted a vegetable garden behind the house and grew far too many tomatoes.", "speaker": "Addison",
              "turns": [
                  "My garden went a little crazy this year.",
                  "What happened? Did the rabbits get in?",
                  "No, the opposite. I have about a hundred tomatoes.",
                  "Wow, you must have a green thumb.",
              ]},
        "3": {"context": "Kai stayed up all night to finish the report before the deadline.", "speaker": "Kai",
              "turns": [
                  "I didn't sleep at all, but the report is done.",
                  "You look exhausted. Was it worth it?",
                  "I think so. My manager said it was the best one this quarter.",
                  "Then go home and get some rest, you earned it.",
                  "I will, as soon as this coffee wears off.",
              ]},
        "4": {"context": "Remy taught the neighbour's kid how to ride a bike over the weekend.", "speaker": "Remy",
              "turns": [
                  "Guess who can ride a bike without training wheels now?",
                  "Not Mrs. Patel's little boy? He was so scared of falling.",
                  "Him! It took two days and a lot of patience.",
                  "You're a natural teacher. His mom must be thrilled.",
                  "She baked me a pie to say thanks.",
                  "Even better. Are you sharing the pie?",
                  "Maybe one slice, if you help me fix my own bike.",
              ]},
    },
    "valid.json": {
        "1": {"context": "Sydney lost the house keys on the way home from the gym.", "speaker": "Sydney",
              "turns": [
                  "I can't find my keys anywhere and I'm locked out.",
                  "Oh no. Did you check your gym bag?",
                  "Twice. They must have fallen out on the bus.",
                  "Call the bus company, they keep a lost and found.",
                  "Good thinking, I'll call them right now.",
              ]},
        "2": {"context": "Sydney lost the house keys on the way home from the gym.", "speaker": "Sydney",
              "turns": [
                  "Can I wait at your place until my roommate gets home?",
                  "Of course. What happened?",
                  "I lost my keys somewhere between the gym and here.",
                  "Come on in, I'll make some tea.",
              ]},
        "3": {"context": "Lee organised a surprise birthday party for a coworker who was leaving the company.", "speaker": "Lee",
              "turns": [
                  "Everyone showed up for Dana's goodbye party!",
                  "That's wonderful. Was Dana surprised?",
                  "Completely. She cried a little when she saw the cake.",
                  "You put a lot of work into it, it shows.",
                  "Thanks. I'm going to miss her at the office.",
                  "Me too. Let's make sure we keep in touch with her.",
              ]},
    },
    "test.json": {
        "1": {"context": "Quinn spilled coffee on the laptop right before an important video call.", "speaker": "Quinn",
              "turns": [
                  "My laptop just died, coffee everywhere.",
                  "Right before your call? That's terrible timing.",
                  "I know. Can I borrow yours for an hour?",
                  "Sure, the password is on a sticky note under it.",
                  "You're a lifesaver — thank you!",
              ]},
        "2": {"context": "Taylor and Morgan argued about whose turn it was to do the dishes, and it went on for an hour.", "speaker": "Taylor",
              "turns": [
                  "It was your turn yesterday.",
                  "No, I did them on Monday. You skipped Tuesday.",
                  "Tuesday doesn't count, we ordered takeout.",
                  "There were still plates. Fine, let's make a chart.",
                  "A chart it is. I'll put it on the fridge.",
                  "And no skipping days for takeout.",
                  "Deal.",
                  "Now who is doing tonight's dishes?",
                  "Rock, paper, scissors?",
                  "Best two out of three.",
                  "You always pick rock.",
                  "Then you should pick paper.",
                  "Maybe I will, maybe I won't.",
                  "This is why the dishes never get done.",
                  "Okay, okay. I'll wash, you dry.",
                  "Fair enough. Grab the towel.",
                  "Already got it.",
                  "See? That wasn't so hard.",
              ]},
    },
}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A folder laid out like the Commonsense-Dialogues release, holding the hand-written dialogues."""
    folder = tmp_path_factory.mktemp("dialogue-release")
    for name, dialogues in HANDWRITTEN.items():
        (folder / name).write_text(json.dumps(dialogues, indent=2, ensure_ascii=False), encoding="utf-8")
    return folder
# The repository lives at <root>/main and the shared data at <root>/shared.
REAL_VALID = Path(__file__).resolve().parents[2] / "shared/data/commonsense_dialogues/valid.json"


def _bigrams(text: str) -> list[tuple[str, str]]:
    words = re.findall(r"[\w']+|[^\w\s]", text.lower())
    return list(zip(words, words[1:]))


def distinct_bigram_percent(samples: list[str]) -> float:
    """Distinct bigrams / all bigrams over the samples of one input, ×100 (PAPER Table 3's TeacherDist)."""
    grams = [g for s in samples for g in _bigrams(s)]
    return 100.0 * len(set(grams)) / max(len(grams), 1)


@pytest.fixture(scope="module")
def train_twin() -> list[twin.TwinDialogue]:
    return twin.generate_dialogues("train", 1500, 0)


# --------------------------------------------------------------------------- twin
def test_twin_is_deterministic_and_ignores_global_random_state():
    random.seed(1)
    a = twin.generate_split("train", 40, 7)
    random.seed(2)
    random.random()
    assert twin.generate_split("train", 40, 7) == a
    assert twin.generate_split("train", 40, 8) != a
    assert twin.generate_split("test", 20, 7) == twin.generate_split("test", 20, 7)
    assert twin.generate_split("test", 20, 7) != twin.generate_split("validation", 20, 7)
    # A longer split extends a shorter one.
    longer = twin.generate_split("train", 60, 7)
    assert [longer[k] for k in a] == list(a.values())


def test_twin_has_the_release_schema(tmp_path):
    data = twin.generate_split("train", 300, 0)
    assert list(data) == [str(i) for i in range(1, 301)]
    for key, record in data.items():
        assert set(record) == {"context", "speaker", "turns"}
        assert isinstance(record["context"], str) and isinstance(record["speaker"], str)
        assert record["speaker"] in twin.NAMES and record["speaker"] in record["context"]
        assert 4 <= len(record["turns"]) <= 7
        assert all(isinstance(t, str) and t.strip() == t and t for t in record["turns"])
        assert "{" not in record["context"] + "".join(record["turns"])   # every placeholder filled
    # The release reader takes the twin as it takes the real files.
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    read = read_release_json(path)
    assert [(d.id, d.context, d.speaker, list(d.turns)) for d in read] == \
        [(k, r["context"], r["speaker"], r["turns"]) for k, r in data.items()]


def test_twin_unknown_split_and_negative_size():
    with pytest.raises(ValueError):
        twin.generate_split("dev", 3, 0)
    with pytest.raises(ValueError):
        twin.generate_split("train", -1, 0)


def test_twin_context_states_who_what_and_how(train_twin):
    for d in train_twin[:300]:
        s = d.scenario
        assert s.name in d.context and s.emotion in d.context
        assert d.context.count(s.name) >= 1 and d.context.endswith(".")
        event = s.event.replace("{poss}", "their")
        assert event in d.context
        assert s.valence == twin.EMOTIONS[s.emotion].valence
        assert event.replace("their", "my") in d.turns[0]  # the speaker opens with the event


def test_twin_splits_are_disjoint_by_scenario():
    scenarios = {split: {d.scenario for d in twin.generate_dialogues(split, n, 0)}
                 for split, n in (("train", 3000), ("validation", 300), ("test", 300))}
    assert not scenarios["train"] & scenarios["test"]
    assert not scenarios["train"] & scenarios["validation"]
    assert not scenarios["validation"] & scenarios["test"]
    assert all(twin.split_of(s) == "test" for s in scenarios["test"])
    # Scenarios recur within a split, as real prompts were given to several workers.
    contexts = collections.Counter(d.scenario for d in twin.generate_dialogues("train", 3000, 0))
    assert max(contexts.values()) >= 2


def test_twin_is_small_enough_to_learn(train_twin):
    texts = [d.context for d in train_twin] + [t for d in train_twin for t in d.turns]
    vocabulary = {w.lower() for t in texts for w in re.findall(r"[\w']+", t)}
    assert 200 <= len(vocabulary) <= 600
    lengths = [len(t.split()) for d in train_twin for t in d.turns]
    assert max(lengths) <= 20
    assert 5 <= sum(lengths) / len(lengths) <= 14
    turns = [len(d.turns) for d in train_twin]
    assert 5.0 <= sum(turns) / len(turns) <= 6.0      # real data: 5.7
    assert set(turns) == {4, 5, 6, 7}


def test_twin_next_turn_has_many_plausible_replies():
    rng = random.Random(0)
    dialogues = twin.generate_dialogues("test", 60, 0)
    # For a fixed history, the next turn takes many forms ...
    scenario = dialogues[0].scenario
    _, samples = twin.continuations(scenario, 1, 30, seed=3)
    assert len(set(samples)) >= 25
    # ... and 5 samples share few bigrams: far more varied than DART's references.
    dialogue_dist = []
    for d in dialogues:
        n_previous = rng.randrange(0, 6)
        _, samples = twin.continuations(d.scenario, n_previous, 5, seed=rng.randrange(10**6))
        dialogue_dist.append(distinct_bigram_percent(samples))
    mean_dialogue = sum(dialogue_dist) / len(dialogue_dist)

    from harness_tasks.dart.twin import generate_split as dart_split

    four_refs = [r for r in dart_split("test", 400, 0) if len(r["annotations"]) == 4]
    dart_dist = [distinct_bigram_percent([a["text"] for a in r["annotations"]]) for r in four_refs]
    mean_dart = sum(dart_dist) / len(dart_dist)
    four = [distinct_bigram_percent(twin.continuations(d.scenario, 2, 4, seed=i)[1])
            for i, d in enumerate(dialogues)]
    assert mean_dialogue > 60, mean_dialogue
    assert sum(four) / len(four) > mean_dart + 15, (sum(four) / len(four), mean_dart)


def test_twin_replies_follow_the_context_enough_to_score():
    """A reply sampled for the right scenario beats one for another scenario on BLEU-1/2:
    the signal a small model can learn is there, and the metrics see it."""
    dialogues = twin.generate_dialogues("test", 50, 1)
    examples, matched, mismatched = [], [], []
    for i, d in enumerate(dialogues):
        other = dialogues[(i + 7) % len(dialogues)].scenario
        for t, turn in enumerate(d.turns):
            examples.append(turn)
            matched.append(twin.continuations(d.scenario, t, 1, seed=i)[1][0])
            mismatched.append(twin.continuations(other, t, 1, seed=i)[1][0])
    task = CommonsenseDialogueTask(resolve_config("commonsense_dialogue", "mle", "ci").data)
    refs = [(e,) for e in examples]
    good, bad = task.score(matched, refs).corpus, task.score(mismatched, refs).corpus
    assert good["bleu1"] > bad["bleu1"] + 3, (good, bad)
    assert good["bleu2"] > bad["bleu2"] + 3, (good, bad)
    assert good["bleu2"] < 60   # but far from predictable


def test_twin_later_turns_pick_up_earlier_ones(train_twin):
    """The friend asks about a noun; the answer usually talks about the same one."""
    asked = kept = 0
    for d in train_twin:
        if len(d.turns) < 3:
            continue
        nouns = twin.TOPICS[d.scenario.topic].nouns
        in_question = [n for n in nouns if re.search(rf"\b{n}\b", d.turns[1])]
        in_answer = [n for n in nouns if re.search(rf"\b{n}\b", d.turns[2])]
        if len(in_question) == 1 and in_answer:
            asked += 1
            kept += in_question[0] in in_answer
    assert asked > 100 and kept / asked > 0.7


def test_twin_replies_follow_a_hidden_world_that_must_be_learnt(train_twin):
    """Beyond what the context states, the turns follow fixed associations of two context features
    (name and valence → the companion, the noun's place and the judgement; topic and emotion → the plan):
    a model that knows them samples replies much closer to the references than one that knows everything else."""
    train = train_twin[:900]
    by_story = collections.defaultdict(list)
    for d in train:
        by_story[(d.scenario.name, d.scenario.valence)].append(d)
    assert len(by_story) == len(twin.NAMES) * 2
    named = followed = 0
    for (name, valence), dialogues in by_story.items():
        for d in dialogues:
            companion = twin.backstory(name, d.scenario.topic, valence).companion
            said = [c for c in twin.COMPANIONS if re.search(rf"\b{c}\b", " ".join(d.turns))]
            named += bool(said)
            followed += said == [companion]
    assert named > 400 and followed / named > 0.8, (named, followed)
    # A sampler that knows the world beats one that draws the associations uniformly by > 4 BLEU-1.
    test = twin.generate_dialogues("test", 60, 0)
    refs = [(turn,) for d in test for turn in d.turns]
    rng = random.Random(0)
    knowing = [twin.generate_dialogue(d.scenario, t + 1, rng).turns[t] for d in test for t in range(len(d.turns))]
    world = random.Random(1)
    unknowing_world = {
        "backstory": lambda n, t, v: twin.Backstory(world.choice(twin.TOPICS[t].nouns), world.choice(twin.COMPANIONS),
                                                    world.randrange(len(twin.ADJECTIVES["good"]))),
        "remedy": lambda t, e, m: (world.choice(twin.TOPICS[t].plans), world.choice(twin.LATER)),
        "register": lambda n, m: world.choice(twin.EMOTIONS[m].synonyms)}
    with pytest.MonkeyPatch.context() as patch:
        for name, function in unknowing_world.items():
            patch.setattr(twin, name, function)
        rng = random.Random(0)
        unknowing = [twin.generate_dialogue(d.scenario, t + 1, rng).turns[t]
                     for d in test for t in range(len(d.turns))]
    task = CommonsenseDialogueTask(resolve_config("commonsense_dialogue", "mle", "ci").data)
    good, bad = task.score(knowing, refs).corpus, task.score(unknowing, refs).corpus
    assert good["bleu1"] > bad["bleu1"] + 4, (good, bad)
    assert good["bleu2"] > bad["bleu2"] + 4, (good, bad)


def test_twin_world_is_keyed_coarsely_enough_for_the_teacher_to_learn(train_twin):
    """Each association recurs in many of the cpu profile's 900 training dialogues (a world keyed finely, as a
    backstory per name and topic was, met each key ≈ 5 times and the 4-layer teacher learnt none of it), and
    is still a conjunction: neither feature alone predicts it."""
    train = train_twin[:900]            # the cpu profile's training split (a longer split extends a shorter one)
    stories = collections.Counter((d.scenario.name, d.scenario.valence) for d in train)
    remedies = collections.Counter((d.scenario.topic, d.scenario.emotion) for d in train)
    assert min(stories.values()) >= 15 and sorted(remedies.values())[len(remedies) // 2] >= 8
    # A backstory is the person's, in good or in bad times, whatever the topic (the noun: the topic's at its place).
    for name in twin.NAMES:
        for valence in ("good", "bad"):
            told = [twin.backstory(name, topic, valence) for topic in twin.TOPICS]
            assert len({(s.companion, s.adjective) for s in told}) == 1
            assert len({twin.TOPICS[t].nouns.index(s.noun) for t, s in zip(twin.TOPICS, told)}) == 1
    # ... and a remedy is the topic's for the emotion, whatever the event.
    for topic, spec in twin.TOPICS.items():
        for emotion, feeling in twin.EMOTIONS.items():
            assert len({twin.remedy(topic, event, emotion) for event in getattr(spec, feeling.valence)}) == 1
    # Conjunctions: the name alone does not fix the companion, nor the valence alone.
    companions = {(n, v): twin.backstory(n, "work", v).companion for n in twin.NAMES for v in ("good", "bad")}
    assert sum(companions[n, "good"] != companions[n, "bad"] for n in twin.NAMES) >= 12
    assert len({c for (n, v), c in companions.items() if v == "bad"}) >= 8
    plans = {(t, e): twin.remedy(t, "", e) for t in twin.TOPICS for e in twin.EMOTIONS}
    assert sum(len({plans[t, e] for e in twin.EMOTIONS if twin.EMOTIONS[e].valence == "bad"}) > 1
               for t in twin.TOPICS) >= 8


# --------------------------------------------------------------------------- pairing
def _dialogue(n_turns: int, key: str = "7", context: str = "Ari met a dog.") -> Dialogue:
    return Dialogue(key, context, "Ari", tuple(f"turn {i}." for i in range(n_turns)))


def test_every_turn_is_a_response_with_context_and_previous_turns():
    pairs = dialogue_pairs(_dialogue(4))
    assert pairs == [
        (0, "Ari met a dog.", "turn 0."),
        (1, "Ari met a dog. | turn 0.", "turn 1."),
        (2, "Ari met a dog. | turn 0. | turn 1.", "turn 2."),
        (3, "Ari met a dog. | turn 0. | turn 1. | turn 2.", "turn 3."),
    ]
    assert SEPARATOR == " | "
    assert format_source("  C. ", [" a ", "b"]) == "C. | a | b"


def test_history_is_capped_at_the_last_15_turns():
    assert MAX_HISTORY_TURNS == 15
    pairs = dialogue_pairs(_dialogue(20))
    assert len(pairs) == 20
    t, source, target = pairs[19]
    assert source == SEPARATOR.join(["Ari met a dog."] + [f"turn {i}." for i in range(4, 19)])
    assert target == "turn 19."
    assert pairs[15][1].count(SEPARATOR) == 15 and pairs[16][1].count(SEPARATOR) == 15
    assert "turn 0." in pairs[15][1] and "turn 0." not in pairs[16][1]
    assert count_pairs([_dialogue(20)]).capped == 4
    assert count_pairs([_dialogue(16)]).capped == 0
    assert dialogue_pairs(_dialogue(3), max_history=1)[2][1] == "Ari met a dog. | turn 1."
    assert [p[1] for p in dialogue_pairs(_dialogue(3), max_history=0)] == ["Ari met a dog."] * 3
    with pytest.raises(ValueError):
        dialogue_pairs(_dialogue(3), max_history=-1)


def test_empty_turns_are_neither_responses_nor_history(caplog):
    d = Dialogue("3", "C.", "A", ("Hi.", "  ", "Bye."))
    assert dialogue_pairs(d) == [(0, "C.", "Hi."), (2, "C. | Hi.", "Bye.")]
    examples = dialogues_to_examples([d], "validation", "x")
    assert [e.id for e in examples] == ["x-validation-3-0", "x-validation-3-2"]
    assert "skipped 1 empty turn" in caplog.text
    assert count_pairs([d]).pairs == 2 and count_pairs([d]).turns == 3


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_examples_from_the_fixture_files(split, release):
    dialogues = load_local(release, split)
    examples = dialogues_to_examples(dialogues, split, "dialogue")
    counts = count_pairs(dialogues)
    expected = {"train": (4, 22, 0), "validation": (3, 15, 0), "test": (2, 23, 2)}[split]
    assert (counts.dialogues, counts.pairs, counts.capped) == expected
    assert len(examples) == counts.pairs == counts.turns
    assert len({e.id for e in examples}) == len(examples)
    for e in examples:
        assert isinstance(e, Example) and e.references == (e.target,)
    by_id = {e.id: e for e in examples}
    for d in dialogues:
        for t, turn in enumerate(d.turns):
            e = by_id[f"dialogue-{split}-{d.id}-{t}"]
            assert e.target == turn
            assert e.source == SEPARATOR.join([d.context, *d.turns[max(0, t - 15):t]])


def test_fixture_dialogues_sharing_a_context_share_their_first_source(release):
    train = dialogues_to_examples(load_local(release, "train"), "train", "d")
    first = [e for e in train if e.id.endswith("-0")]
    assert first[0].source == first[1].source and first[0].target != first[1].target


def test_count_pairs_of_the_twin():
    dialogues = CommonsenseDialogueTask(resolve_config("commonsense_dialogue", "mle", "cpu").data).records("test")
    counts = count_pairs(dialogues)
    assert counts.dialogues == 60 and counts.pairs == counts.turns
    assert 250 <= counts.pairs <= 400 and 4 <= counts.mean_turns <= 7


# --------------------------------------------------------------------------- release files
def _write(tmp_path: Path, content, name: str = "valid.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def _good(n: int = 4) -> dict:
    return {str(i + 1): {"context": f"P{i} did a thing.", "speaker": f"P{i}", "turns": ["Hi.", "Hello."]}
            for i in range(n)}


def test_load_local_maps_validation_to_valid_json(tmp_path, release):
    for split, name in (("train", "train.json"), ("validation", "valid.json"), ("test", "test.json")):
        assert RELEASE_FILES[split] == name
        assert load_local(release, split) == read_release_json(release / name)
    assert [d.id for d in load_local(release, "validation")] == ["1", "2", "3"]


def test_load_local_missing_directory_and_file(tmp_path):
    with pytest.raises(HarnessError) as info:
        load_local(tmp_path / "nowhere", "validation")
    assert "valid.json" in str(info.value) and all(n in str(info.value) for n in RELEASE_FILES.values())
    _write(tmp_path, _good(), "train.json")
    assert len(load_local(tmp_path, "train")) == 4
    with pytest.raises(HarnessError) as info:
        load_local(tmp_path, "test")
    text = str(info.value)
    assert text.startswith("Commonsense-Dialogues test file not found") and str(tmp_path / "test.json") in text
    with pytest.raises(HarnessError, match="unknown Commonsense-Dialogues split 'dev'"):
        load_local(tmp_path, "dev")


@pytest.mark.parametrize("content,message", [
    ("", "file is empty"),
    ("{\"1\": ", "not valid JSON"),
    ("[{\"context\": \"c\", \"speaker\": \"s\", \"turns\": [\"t\"]}]", "expected a JSON object of id → dialogue"),
    ("{}", "contains no dialogues"),
])
def test_read_release_json_bad_file(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(HarnessError) as info:
        read_release_json(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.pop("context"), "missing required field(s) 'context'"),
    (lambda r: r.pop("turns"), "missing required field(s) 'turns'"),
    (lambda r: r.pop("speaker"), "missing required field(s) 'speaker'"),
    (lambda r: r.update(context=None), "'context' must be a string"),
    (lambda r: r.update(speaker=["P2"]), "'speaker' must be a string"),
    (lambda r: r.update(turns="Hi. Hello."), "'turns' must be a non-empty list of strings"),
    (lambda r: r.update(turns=[]), "'turns' must be a non-empty list of strings"),
    (lambda r: r.update(turns=["Hi.", 3]), "turn 1 must be a string"),
    (lambda r: r.update(turns=["Hi.", None]), "turn 1 must be a string"),
])
def test_read_release_json_bad_record(tmp_path, mutate, message):
    data = _good()
    mutate(data["3"])
    path = _write(tmp_path, data)
    with pytest.raises(HarnessError) as info:
        read_release_json(path)
    text = str(info.value)
    assert text.startswith(f"{path}: dialogue '3': "), text
    assert message in text and "\n" not in text


def test_read_release_json_not_an_object_and_first_bad_record(tmp_path):
    data = _good(5)
    data["2"] = ["not", "a", "dialogue"]
    data["4"].pop("turns")
    with pytest.raises(HarnessError, match=r": dialogue '2': must be a JSON object"):
        read_release_json(_write(tmp_path, data))


# --------------------------------------------------------------------------- hub


def _hub_rows(data: dict) -> list[dict]:
    return [{"conversation_id": key, **record} for key, record in data.items()]


def test_load_hub_from_a_local_parquet_folder(tmp_path, no_network):
    pd = pytest.importorskip("pandas")
    hub_dir = tmp_path / "dialogue-hub"
    hub_dir.mkdir()
    expected = {}
    for split, n in (("train", 12), ("validation", 4), ("test", 3)):
        data = twin.generate_split(split, n, 0)
        expected[split] = [normalise_dialogue(r, "x", k) for k, r in data.items()]
        pd.DataFrame(_hub_rows(data)).to_parquet(hub_dir / f"{split}-00000-of-00001.parquet")
    for split in expected:
        assert load_hub(str(hub_dir), None, split) == expected[split]


def test_load_hub_jsonl_files_named_like_the_release(tmp_path, no_network, release):
    """The hub's main branch holds train/valid/test.jsonl; ``valid`` is the validation split."""
    hub_dir = tmp_path / "dialogue-jsonl"
    hub_dir.mkdir()
    for name in ("train", "valid", "test"):
        data = json.loads((release / f"{name}.json").read_text(encoding="utf-8"))
        rows = [{"conversation_id": k, **r} for k, r in data.items()]
        (hub_dir / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    for split in ("train", "validation", "test"):
        assert load_hub(str(hub_dir), None, split) == load_local(release, split)


def test_load_hub_without_id_column_uses_row_numbers(tmp_path, no_network):
    pd = pytest.importorskip("pandas")
    hub_dir = tmp_path / "no-ids"
    hub_dir.mkdir()
    pd.DataFrame([{"context": "C.", "speaker": "A", "turns": ["a", "b"]}] * 2).to_parquet(
        hub_dir / "test-00000-of-00001.parquet")
    assert [d.id for d in load_hub(str(hub_dir), None, "test")] == ["0", "1"]


def test_load_hub_reports_the_first_bad_row(tmp_path, no_network):
    pd = pytest.importorskip("pandas")
    hub_dir = tmp_path / "bad-hub"
    hub_dir.mkdir()
    rows = _hub_rows(twin.generate_split("test", 3, 0))
    rows[1]["context"] = None
    pd.DataFrame(rows).to_parquet(hub_dir / "test-00000-of-00001.parquet")
    with pytest.raises(HarnessError) as info:
        load_hub(str(hub_dir), None, "test")
    text = str(info.value)
    assert text.startswith(f"{hub_dir} [test]: dialogue '2': 'context' must be a string"), text


def test_load_hub_offline_is_one_line_error(no_network):
    with pytest.raises(HarnessError) as info:
        load_hub("harness-tests/no-such-dialogue-dataset", "refs/convert/parquet", "validation")
    err = info.value
    text = str(err)
    assert text.startswith("could not load Commonsense-Dialogues from the hub "
                           "('harness-tests/no-such-dialogue-dataset', revision 'refs/convert/parquet'): ")
    assert "--data-dir DIR" in text and "--set data.source=local" in text and "valid.json" in text
    assert "\n" not in text
    assert err.__cause__ is None and err.__suppress_context__


# --------------------------------------------------------------------------- the task
def _task(profile: str = "cpu", **sets) -> CommonsenseDialogueTask:
    cfg = resolve_config("commonsense_dialogue", "js", profile, sets=[(k, str(v)) for k, v in sets.items()])
    return CommonsenseDialogueTask(cfg.data)


def test_task_is_registered_as_decoder_only():
    cls = TASKS.get("commonsense_dialogue")
    assert cls is CommonsenseDialogueTask
    assert cls.architecture == "decoder-only"
    assert cls.metrics == ("bleu1", "bleu2", "bleu1_nlgeval", "bleu2_nlgeval") and cls.selection_metric == "bleu2" and cls.method_defaults["js"] == {"beta": 0.85}


def test_embedded_and_local_sources_go_through_the_same_code(tmp_path):
    """The twin written out as release files and read back gives the same examples."""
    embedded = _task("ci")
    release = tmp_path / "release"
    release.mkdir()
    for split, name in RELEASE_FILES.items():
        size = {"train": 30, "validation": 2, "test": 2}[split]
        (release / name).write_text(json.dumps(twin.generate_split(split, size, 0)), encoding="utf-8")
    local = _task("ci", **{"data.source": "local", "data.data_dir": release})
    for split in RELEASE_FILES:
        assert local.load(split) == embedded.load(split)
        assert len(embedded.load(split)) > 0
    with pytest.raises(HarnessError, match="needs a folder"):
        _task("ci", **{"data.source": "local"}).load("train")
    with pytest.raises(HarnessError, match="data.source='ftp': expected one of embedded, local, hub"):
        _task("ci", **{"data.source": "ftp"}).load("train")   # the config refuses it before the task sees it


def test_metrics_are_sacrebleu_bleu1_and_bleu2():
    from sacrebleu.metrics import BLEU

    hyps = ["I am so happy for you!", "Oh no, what happened?", "Call the vet tomorrow.", "ok"]
    refs = [("I am really happy for you.",), ("Oh no! What happened with the dog?",),
            ("Maybe you should call the vet.",), ("Sounds good.",)]
    scores = _task().score(hyps, refs)
    assert set(scores.corpus) == {"bleu1", "bleu2", "bleu1_nlgeval", "bleu2_nlgeval"}
    for name, order in (("bleu1", 1), ("bleu2", 2)):
        bleu = BLEU(max_ngram_order=order)
        direct = bleu.corpus_score(hyps, [[r[0] for r in refs]])
        assert scores.corpus[name] == pytest.approx(direct.score)
        assert scores.signatures[name] == str(bleu.get_signature())
        assert "nrefs:1" in scores.signatures[name]
        sentence = BLEU(max_ngram_order=order, effective_order=True)
        assert scores.per_example[name] == pytest.approx([sentence.sentence_score(h, list(r)).score
                                                          for h, r in zip(hyps, refs)])
    assert scores.corpus["bleu1"] > scores.corpus["bleu2"] > 0


@pytest.mark.parametrize("profile", ["ci", "cpu", "paper"])
def test_profiles_decode_and_select_like_the_paper(profile):
    cfg = resolve_config("commonsense_dialogue", "js", profile)
    assert cfg.teacher.family == "gpt2" and cfg.student.encoder_layers == 0
    for decode in (cfg.eval_decode, cfg.online_sampling):
        # the paper's nucleus sampling also kept the model config's top-k 50 (docs/paper-recipe.md)
        assert decode.do_sample and decode.num_beams == 1 and decode.top_p == 0.9
        assert decode.top_k == (50 if profile == "paper" else None)
    assert cfg.eval_decode.min_new_tokens == 3
    assert cfg.pseudo_labels.num_beams == 5 and not cfg.pseudo_labels.do_sample
    # KD keeps its last checkpoint; the paper's teacher and pre-distillation select theirs (tests/test_paper_recipe.py)
    kept_last = (cfg.kd_train,) if profile == "paper" else (cfg.teacher_train, cfg.student_train, cfg.kd_train)
    for schedule in kept_last:
        assert schedule.select_best is False and schedule.evals_per_epoch == 0
    assert cfg.method_params == {"beta": 0.85}
    if profile != "ci":
        assert cfg.eval_decode.max_new_tokens == 64
    if profile == "paper":
        assert cfg.teacher.pretrained == "microsoft/DialoGPT-medium"
        assert cfg.student.decoder_layers == 4 and cfg.data.source == "hub"
    else:
        assert cfg.teacher.pretrained is None and cfg.data.source == "embedded"
        assert cfg.student.decoder_layers < cfg.teacher.decoder_layers
    if profile == "cpu":   # a sixth of the teacher in the paper; with half of it the student matched the teacher
        assert (cfg.teacher.decoder_layers, cfg.student.decoder_layers) == (4, 1)
        # one student epoch to the teacher's six: with 2.5 the student kept up with the teacher (docs/findings.md)
        assert (cfg.teacher_train.epochs, cfg.student_train.epochs) == (6, 1.0)


@pytest.mark.parametrize("profile, sets", [("ci", ()), ("cpu", ()), ("paper", ()),
                                           ("cpu", ("data.source=local", "data.data_dir=somewhere"))])
def test_pseudo_labels_never_repeat_a_trigram_on_twin_and_real_files(profile, sets):
    """Beam search loops on open-ended replies (docs/findings.md, "Real dialogue: SeqKD and ENGINE loop"): the
    dialogue pseudo-labels never repeat a 3-gram, on every profile and data source; the other decodings are not
    constrained."""
    from harness.config import parse_sets
    cfg = resolve_config("commonsense_dialogue", "seqkd", profile, sets=parse_sets(sets))
    assert cfg.pseudo_labels.no_repeat_ngram_size == 3 and cfg.pseudo_labels.num_beams == 5
    assert cfg.eval_decode.no_repeat_ngram_size == 0 and cfg.online_sampling.no_repeat_ngram_size == 0


@pytest.mark.parametrize("profile", ["ci", "cpu"])
def test_twin_sources_fit_the_profiles_token_limits(profile):
    """No source or response of the twin is cut by the tokenizer limits of the profile
    (a cut source would lose its latest turns)."""
    from harness.lm import train_tokenizer

    cfg = resolve_config("commonsense_dialogue", "js", profile)
    task = CommonsenseDialogueTask(cfg.data)
    examples = {split: task.load(split) for split in ("train", "validation", "test")}
    tok = train_tokenizer(sorted({e.source for e in examples["train"]} | {e.target for e in examples["train"]}),
                          cfg.tokenizer.vocab_size)
    for split, exs in examples.items():
        sources = tok([e.source for e in exs], add_special_tokens=False)["input_ids"]
        targets = tok([e.target for e in exs], add_special_tokens=False)["input_ids"]
        assert max(map(len, sources)) + 1 <= cfg.tokenizer.max_source_tokens, split
        assert max(map(len, targets)) + 1 <= cfg.tokenizer.max_target_tokens, split
        assert cfg.tokenizer.max_source_tokens + cfg.eval_decode.max_new_tokens <= cfg.teacher.max_positions


def test_dart_profiles_are_untouched():
    cfg = resolve_config("dart", "js", "cpu")
    assert cfg.teacher.family == "t5" and cfg.eval_decode.num_beams == 5 and not cfg.eval_decode.do_sample


# --------------------------------------------------------------------------- real data
@pytest.mark.skipif(not REAL_VALID.is_file(), reason=f"real Commonsense-Dialogues file not found at {REAL_VALID}")
def test_real_validation_file_gives_the_papers_pair_count():
    dialogues = read_release_json(REAL_VALID)
    counts = count_pairs(dialogues)
    assert counts.dialogues == 1157
    assert counts.pairs == 6619            # PAPER.md §3: 6,619 validation pairs
    assert counts.mean_turns == pytest.approx(5.72, abs=0.01)
    assert len(dialogues_to_examples(dialogues, "validation", "d")) == 6619
    assert sum(len(d.turns) - 1 for d in dialogues) == 5462   # the rule that skips the first turn does not


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_ci_cell_end_to_end(tmp_path):
    """One JS cell on the ci profile: decoder-only teacher, student, BLEU-1/2 and the risks."""
    import pandas as pd

    from harness.pipeline import Pipeline

    cfg = resolve_config("commonsense_dialogue", "js", "ci", sets=[("results_dir", str(tmp_path)),
                                                                   ("device", "cpu")])
    outcome = Pipeline(cfg).run()
    metrics = pd.read_parquet(outcome.path / "metrics.parquet")
    assert set(metrics["model"]) == {"teacher", "predistill", "js"}
    for model in ("teacher", "predistill", "js"):
        got = set(metrics.loc[metrics["model"] == model, "metric"])
        assert {"bleu1", "bleu2", "r_llh", "r_cvg"} <= got
    assert metrics["value"].notna().all()
    n_test = count_pairs(_task("ci").records("test")).pairs
    examples = pd.read_parquet(outcome.path / "examples.parquet")
    assert len(examples[examples["model"] == "js"]) == n_test
    assert examples["source"].str.contains(re.escape(SEPARATOR)).any()


def test_the_paper_profile_joins_turns_as_dialogpt_does():
    """DialoGPT reads each turn followed by <|endoftext|> (the source's own EOS ends the last one); the twin's
    profiles keep the plain-text " | "."""
    from harness.registry import TASKS

    cls = TASKS.get("commonsense_dialogue")
    paper = resolve_config("commonsense_dialogue", "js", "paper")
    assert paper.data.turn_separator == "<|endoftext|>"
    dialogue = Dialogue("d1", "At the park.", "Ann", ("Hi!", "Hello there.", "Nice day."))
    data = dataclasses.replace(resolve_config("commonsense_dialogue", "js", "ci").data, turn_separator="<|endoftext|>")
    examples = cls(data).to_examples([dialogue], "test")
    assert examples[2].source == "At the park.<|endoftext|>Hi!<|endoftext|>Hello there."
    plain = cls(resolve_config("commonsense_dialogue", "js", "cpu").data).to_examples([dialogue], "test")
    assert plain[2].source == "At the park. | Hi! | Hello there."

"""Embedded synthetic twin of Commonsense-Dialogues (Zhou et al. 2021).

The twin writes dialogues in the exact release schema (one JSON object per split file)::

    {"1": {"context": "Robin lost their wallet. Robin felt very worried.",
           "speaker": "Robin",
           "turns": ["Oh man. I lost my wallet this morning.", "Oh no! What happened with the bank?", ...]},
     "2": {...}}

so that the real loader (:mod:`harness_tasks.commonsense_dialogue.records`) runs on it
unchanged.

What it is built to show
------------------------
Dialogue is the most multi-modal task of the benchmark: a reply to a social situation
can be many different, equally good sentences. The project measures this as
TeacherDist (distinct bigrams over 5 teacher samples per test input) and expects
WMT < DART < XSum < dialogue. The DART twin gives each predicate 3 phrasings with a
dominant one; this twin instead builds every turn from 1-4 *independent* slots
(an interjection, an empathy phrase, a question, a plan, ...), each drawn uniformly
from 4-11 templates that themselves hold words drawn uniformly from small lists.
A reply therefore has thousands of plausible realisations with no dominant mode,
and five samples share few bigrams.

It stays learnable, because every slot is *loosely conditioned* on the situation:

* the **scenario** — a person (16 names), a topic (10: work, school, pets, ...), an
  event of that topic, good or bad, and an emotion of the event's valence — is stated
  in the social context, e.g. "Robin lost their wallet. Robin felt very worried.";
* topic words (the nouns and plans of the topic), the emotion's synonyms, the
  valence (congratulations vs. sympathy) and the speaker's name recur in the turns;
* turns follow a fixed act sequence (share → react → answer → support → thanks →
  close → bye), alternating between the speaker (even turns) and a friend (odd turns);
* a turn may pick up what the previous turns said: the noun the friend asked about
  is usually the one the answer talks about, the plan one side proposes is often
  the plan the other side repeats, and a companion once named is named again.

Why there is a hidden world
---------------------------
With only the cues above, the twin separated nothing: a perfect sampler of the generator
scores BLEU-1 39 against the test references, one that knows only the act, topic and
valence and copies the stated event already 34, and the rest of a reply (≈ 60% of
BLEU-1) is context-free template words. Everything worth knowing was a copy or a
topic-level cue that a 2-layer student learns as well as the teacher (cpu profile: MLE
student 38.9 vs. teacher 38.5 BLEU-1).

So the turns also follow a **hidden world** of fixed associations that no context
states and that are each a *conjunction* of two context features, as a pretrained
model's knowledge about people and situations would be:

* a **backstory** per (name, valence) — 32 of them: how the person's good or bad
  stories go whatever the topic: the companion involved (20 names, e.g. "Ivan saw it
  all.", "Was Ivan there?", "Say hi to Ivan."), which of the topic's nouns they turn on
  (its place in the topic's list), the person's judgement (which adjective of the
  valence they use) and their register (which synonym of the emotion);
* a **remedy** per (topic, emotion) — 90: the plan that fits and when to carry it out
  ("Why not call the vet tomorrow?").

Keyed coarsely on purpose. A first world keyed finely (a backstory per name and topic,
160; a remedy per event and emotion, ≈ 270; a register per name and emotion, 144) met
each key in ≈ 3-6 of the cpu profile's 900 training dialogues, and the 4-layer teacher
learnt none of it: on the test references its NLL of a companion's name was 3.6 nats,
above a uniform guess (ln 20 = 3.0), even where the history had already said the name,
and its BLEU-2 was that of a sampler that draws the world uniformly (≈ 27), so no
student could fall behind it there. Now each backstory recurs in ≈ 28 training
dialogues and each remedy in ≈ 10, and the teacher learns part of them (NLL of the
remedy's time word 1.2 → 0.65 nats, of the emotion's synonym 1.9 → 1.5; the 20
companions are still beyond it), while a one-layer student in its one epoch (the cpu
profile) has to put two features together (the name, and the valence that only the
emotion word or the event tells) from one pass: docs/findings.md, "The twins against
the paper's regime".

A word with no earlier mention follows the world with probability P_WORLD (0.9) and is
drawn uniformly otherwise, so every slot keeps its variety of templates and fillers
(the generator's own TeacherDist stays ≈ 71, about where it was). The world is a
function of the words alone, not of the data seed, so test dialogues — new
scenarios — follow the associations their name, topic and emotion had in training.
A sampler that knows the world scores ≈ 44 BLEU-1 / 34 BLEU-2 on the cpu test split,
one that knows everything else but draws these words uniformly ≈ 38 / 27: room for a
model that learns the associations (the teacher has more depth and more training) over
one that does not, while the stated cues and the copies stay as easy as before.
Companions and plans, once said, are mostly repeated (P_KEEP_*).

Vocabulary stays at a few hundred words and turns at ≤ 20 words (optional slots are
dropped, last first, from a longer turn).

Splits are disjoint by scenario (a stable hash of name, topic, event and emotion), so
no test context is ever a training context; within a split a scenario may recur, as
real prompts do (each was shown to several crowd workers).

Everything is drawn from ``random.Random`` instances seeded through a stable hash of
``(seed, split)``; the global ``random`` state is never used.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

from harness.datasets.twins import check_request, pick_weighted, split_of_hash, stable_seed

# --------------------------------------------------------------------------- lexicon
NAMES = ("Robin", "Jordan", "Casey", "Riley", "Taylor", "Alex", "Sam", "Jamie",
         "Morgan", "Quinn", "Avery", "Skyler", "Cameron", "Jesse", "Kendall", "Tracy")
# The people in the speakers' lives: each (name, topic) has one of them (see Backstory).
COMPANIONS = ("Lena", "Omar", "Priya", "Diego", "Mia", "Noah", "Zoe", "Ivan", "Nora", "Felix",
              "Hana", "Leo", "Ada", "Theo", "Iris", "Milo", "Rosa", "Hugo", "Ella", "Bruno")


@dataclass(frozen=True)
class Topic:
    """Words of one topic. Events are past-tense verb phrases and plans base-form verb
    phrases; ``{poss}`` becomes "their", "my" or "your" depending on who speaks."""

    nouns: tuple[str, ...]
    good: tuple[str, ...]
    bad: tuple[str, ...]
    plans: tuple[str, ...]


TOPICS: dict[str, Topic] = {
    "work": Topic(
        ("boss", "office", "project", "meeting", "coworkers", "interview"),
        ("got a promotion at work", "finished a big project at work", "got a raise from {poss} boss"),
        ("lost {poss} job", "missed an important meeting", "got into trouble with {poss} boss"),
        ("talk to {poss} boss", "look for a new job", "take a day off", "update {poss} resume")),
    "school": Topic(
        ("teacher", "exam", "class", "grades", "homework", "classmates"),
        ("passed a hard exam", "got the best grade in class", "won the science fair"),
        ("failed a math test", "forgot {poss} homework at home", "got detention at school"),
        ("study harder", "ask the teacher for help", "join a study group", "review {poss} notes")),
    "pets": Topic(
        ("dog", "cat", "vet", "puppy", "leash", "park"),
        ("adopted a puppy", "taught {poss} dog a new trick", "found {poss} lost cat"),
        ("lost {poss} dog at the park", "took {poss} sick cat to the vet", "got bitten by a dog"),
        ("put up posters", "call the vet", "buy a new leash", "walk the dog every day")),
    "sports": Topic(
        ("coach", "team", "game", "match", "ball", "field"),
        ("won the big game", "scored the winning goal", "made the soccer team"),
        ("lost the final match", "hurt {poss} knee at practice", "got cut from the team"),
        ("practice every day", "talk to the coach", "rest {poss} knee", "watch the next game")),
    "cooking": Topic(
        ("recipe", "dinner", "kitchen", "oven", "cake", "guests"),
        ("baked a perfect cake", "cooked dinner for {poss} family", "won a cooking contest"),
        ("burned the dinner", "dropped the birthday cake", "set off the smoke alarm"),
        ("try a new recipe", "order a pizza", "buy a new oven", "take a cooking class")),
    "travel": Topic(
        ("trip", "flight", "hotel", "beach", "city", "bags"),
        ("booked a trip to the beach", "visited a new city", "got a free flight upgrade"),
        ("missed {poss} flight", "lost {poss} bags at the airport", "got sick on vacation"),
        ("call the airline", "plan another trip", "pack lighter next time", "book a better hotel")),
    "music": Topic(
        ("band", "song", "guitar", "concert", "stage", "crowd"),
        ("played {poss} first concert", "wrote a new song", "got tickets to a big concert"),
        ("broke a guitar string on stage", "forgot the words to a song", "missed the concert"),
        ("practice the song again", "join a band", "buy a new guitar", "play for {poss} friends")),
    "money": Topic(
        ("bills", "rent", "savings", "bank", "wallet", "budget"),
        ("paid off all {poss} bills", "found money in an old coat", "saved enough for a car"),
        ("lost {poss} wallet", "could not pay the rent", "spent all {poss} savings"),
        ("make a budget", "call the bank", "save a little each week", "get a second job")),
    "family": Topic(
        ("mom", "dad", "sister", "brother", "grandma", "cousins"),
        ("visited {poss} grandma", "threw a party for {poss} mom", "got a new baby brother"),
        ("had a fight with {poss} sister", "forgot {poss} dad's birthday", "moved away from {poss} family"),
        ("call {poss} mom", "say sorry to {poss} sister", "visit more often", "plan a family dinner")),
    "health": Topic(
        ("doctor", "gym", "diet", "sleep", "cold", "medicine"),
        ("ran {poss} first race", "lost ten pounds", "finished a hard workout"),
        ("caught a bad cold", "broke {poss} arm", "could not fall asleep"),
        ("see a doctor", "get more sleep", "eat better", "go for a walk")),
}


@dataclass(frozen=True)
class Emotion:
    valence: str                   # "good" or "bad": the events it goes with
    synonyms: tuple[str, ...]      # the first one is the word the context uses


EMOTIONS: dict[str, Emotion] = {
    "happy": Emotion("good", ("happy", "glad", "thrilled")),
    "excited": Emotion("good", ("excited", "pumped", "eager")),
    "proud": Emotion("good", ("proud", "pleased", "confident")),
    "relieved": Emotion("good", ("relieved", "calm", "grateful")),
    "sad": Emotion("bad", ("sad", "upset", "down")),
    "nervous": Emotion("bad", ("nervous", "anxious", "scared")),
    "angry": Emotion("bad", ("angry", "mad", "annoyed")),
    "embarrassed": Emotion("bad", ("embarrassed", "silly", "ashamed")),
    "worried": Emotion("bad", ("worried", "stressed", "tense")),
}

ADJECTIVES = {"good": ("great", "amazing", "fun", "kind", "perfect"),
              "bad": ("terrible", "awful", "hard", "rude", "scary")}
WHEN = ("today", "yesterday", "this morning", "last night", "this week")
LATER = ("tomorrow", "this weekend", "next week", "tonight", "soon")
BUDDY = ("buddy", "pal", "friend")

CONTEXT_TEMPLATES = (
    "{name} {event}. {name} felt very {emotion}.",
    "{name} {event} and was {emotion} about it.",
    "After {name} {event}, {name} felt {emotion}.",
    "{name} {event} and told a friend how {emotion} they were.",
)

# Dialogue acts in turn order; even turns are the speaker's, odd turns the friend's.
ACTS = ("share", "react", "answer", "support", "thanks", "close", "bye")
# Turns per dialogue (real data: 4-7, mostly 6).
N_TURNS_WEIGHTS = {4: 0.2, 5: 0.2, 6: 0.5, 7: 0.1}

# Slot templates of each act. A turn is built from its act's slots in order; each slot
# is present or not (see _SLOT_PLANS) and draws one template uniformly. Placeholders:
# {emo} a synonym of the emotion, {noun}/{plan}/{adj} topic and valence words,
# {event} the scenario's event in the first person, {when}/{later} time words,
# {name} the speaker's name, {buddy} a form of address, {companion} the person of the
# speaker's backstory. {noun}, {plan}, {emo} and {companion} follow the hidden world
# (Backstory, remedy, register) with probability P_WORLD.
SLOTS: dict[str, dict[str, tuple[str, ...]]] = {
    "share": {
        "open": ("Hey!", "Hi!", "Guess what?", "Oh man.", "Big news.", "Listen."),
        "event": ("I {event} {when}.", "I just {event}!", "I {event} {when}!", "Well, I {event} {when}."),
        "with": ("{companion} was there too.", "{companion} saw it all.", "I was with {companion}.",
                 "{companion} was with me."),
        "feel": ("I feel so {emo}.", "I am really {emo}.", "I am still {emo} about it.", "I am so {emo} right now."),
    },
    "react": {
        "good_open": ("Wow!", "That is great!", "Congrats!", "No way!", "Awesome!", "Good for you!"),
        "bad_open": ("Oh no!", "I am so sorry.", "That is awful.", "Oh dear.", "That is rough.", "Ugh, that is bad."),
        "empathy": ("You must be so {emo}.", "I would be {emo} too.", "No wonder you are {emo}.",
                    "I can tell you are {emo}.", "Of course you feel {emo}, {name}."),
        "ask": ("What did the {noun} say?", "Was the {noun} there?", "What happened with the {noun}?",
                "What will you do now?", "How do you feel about the {noun}?", "Tell me more about the {noun}.",
                "Did you tell anyone about the {noun}?", "Was {companion} there?", "What did {companion} say?",
                "Did {companion} see the {noun}?", "Does {companion} know?"),
    },
    "answer": {
        "lead": ("Well,", "Honestly,", "Yeah,", "To be honest,", "I guess"),
        "detail": ("the {noun} was really {adj}.", "I keep thinking about the {noun}.",
                   "the {noun} was the {adj} part.", "it was all about the {noun}.",
                   "nobody expected the {noun} to be so {adj}.", "{companion} said the {noun} was {adj}.",
                   "{companion} and I talked about the {noun}.", "{companion} thinks the {noun} was {adj}."),
        "next": ("I think I will {plan}.", "Now I want to {plan}.", "I still feel {emo}.",
                 "I might {plan} {later}.", "Maybe I should {plan}."),
    },
    "support": {
        "good_cheer": ("You really deserve it.", "I am so proud of you.", "We should celebrate {later}!",
                       "That is amazing news.", "You worked hard for this."),
        "bad_cheer": ("Hang in there.", "You will be fine.", "Do not give up.", "I am here for you.",
                      "It happens to everyone."),
        "advice": ("Maybe you should {plan}.", "Why not {plan} {later}?", "You could {plan}.",
                   "I think you should {plan}.", "Have you thought about how to {plan}?",
                   "Maybe {companion} can help you {plan}.", "You and {companion} could {plan}.",
                   "Ask {companion} to {plan} with you."),
    },
    "thanks": {
        "agree": ("Thanks, {buddy}.", "You are right.", "That is a good idea.", "I hope so.", "Thank you so much."),
        "plan": ("I will {plan} {later}.", "Let us talk {later}.", "Maybe I will {plan}.",
                 "I am going to {plan}.", "First I need to {plan}.", "{companion} and I will {plan} {later}.",
                 "I will ask {companion} to {plan}."),
    },
    "close": {
        "bye": ("Any time.", "Good luck with the {noun}!", "Let me know how it goes.", "See you {later}.",
                "Text me {later}.", "Take care, {name}.", "I am always here, {name}.", "Say hi to {companion}.",
                "Tell {companion} I said hi.", "Good luck to you and {companion}."),
        "extra": ("You got this.", "Stay strong.", "Have fun with it.", "Do not worry too much."),
    },
    "bye": {
        "bye": ("Bye!", "Sounds good.", "See you.", "Thanks again.", "Will do.", "Talk soon."),
    },
}

# Which slots a turn of each act uses: a list of (slot, probability of being present),
# with at least ``min_slots`` of them present.
_SLOT_PLANS: dict[str, tuple[tuple[tuple[str, float], ...], int]] = {
    "share": ((("open", 0.5), ("event", 1.0), ("with", 0.5), ("feel", 0.5)), 1),
    "react": ((("open", 0.8), ("empathy", 0.6), ("ask", 0.8)), 2),
    "answer": ((("lead", 0.5), ("detail", 0.9), ("next", 0.7)), 1),
    "support": ((("cheer", 0.7), ("advice", 0.7)), 1),
    "thanks": ((("agree", 0.8), ("plan", 0.7)), 1),
    "close": ((("bye", 1.0), ("extra", 0.4)), 1),
    "bye": ((("bye", 1.0),), 1),
}

# How often a turn reuses what an earlier turn said (the noun asked about, the plan proposed,
# the companion named).
P_KEEP_NOUN = 0.8
P_KEEP_PLAN = 0.6
P_KEEP_COMPANION = 0.9
# How often a word with no earlier mention follows the hidden world rather than a uniform draw.
P_WORLD = 0.9
# Longest turn in words: optional slots are dropped (last first) until a turn fits.
MAX_TURN_WORDS = 20


# --------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Scenario:
    """The social situation behind a dialogue: who, what happened, how they felt."""

    name: str
    topic: str
    event: str      # a template with {poss}
    emotion: str

    @property
    def valence(self) -> str:
        return EMOTIONS[self.emotion].valence

    def context(self, rng: random.Random) -> str:
        template = rng.choice(CONTEXT_TEMPLATES)
        return template.format(name=self.name, event=_fill_poss(self.event, "their"), emotion=self.emotion)


# --------------------------------------------------------------------------- the hidden world
# Fixed associations, never stated in a context, that the turns follow with probability
# P_WORLD. They are functions of the words alone (a stable hash, independent of the data
# seed), so the test dialogues follow the same world as the training ones, and each is a
# *conjunction* of two context features: no single word of the context predicts it. Keyed coarsely
# (32 backstories, 90 remedies), so that each key recurs often enough for the teacher to learn it.
@dataclass(frozen=True)
class Backstory:
    """What a person's good (or bad) stories turn on, told on one topic: the thing (the topic's noun at the
    person's place), the person involved, and how the person judges things (an index into the valence's
    ADJECTIVES)."""

    noun: str
    companion: str
    adjective: int


def backstory(name: str, topic: str, valence: str) -> Backstory:
    """The backstory of ``name`` in ``valence`` situations (32 of them: 16 names × 2), told on ``topic``: the
    noun is the topic's noun at the backstory's index."""
    rng = random.Random(_seed("dialogue-twin-backstory", name, valence))
    return Backstory(TOPICS[topic].nouns[rng.randrange(len(TOPICS[topic].nouns))], rng.choice(COMPANIONS),
                     rng.randrange(len(ADJECTIVES["good"])))


def remedy(topic: str, event: str, emotion: str) -> tuple[str, str]:
    """The plan (a template with {poss}) that fits an event of ``topic`` felt as ``emotion``, whatever the event,
    and when to carry it out (90 pairs: 10 topics × 9 emotions; ``event`` is not part of the key)."""
    rng = random.Random(_seed("dialogue-twin-remedy", topic, emotion))
    return rng.choice(TOPICS[topic].plans), rng.choice(LATER)


def register(name: str, emotion: str) -> str:
    """The synonym of ``emotion`` that ``name``'s dialogues use: its place in the emotion's synonyms is the
    person's in good or in bad times (32 of them: 16 names × 2 valences)."""
    synonyms = EMOTIONS[emotion].synonyms
    place = random.Random(_seed("dialogue-twin-register", name, EMOTIONS[emotion].valence)).randrange(len(synonyms))
    return synonyms[place]


@dataclass
class TurnMemory:
    """What earlier turns said that later turns may pick up."""

    noun: str | None = None
    plan: str | None = None
    companion: str | None = None


def _fill_poss(text: str, poss: str) -> str:
    return text.replace("{poss}", poss)


def _slot_template(act: str, slot: str, valence: str) -> tuple[str, ...]:
    table = SLOTS[act]
    return table[f"{valence}_{slot}"] if f"{valence}_{slot}" in table else table[slot]


def _world_or_uniform(world: str, options: tuple[str, ...], rng: random.Random) -> str:
    return world if rng.random() < P_WORLD else rng.choice(options)


def _recall(previous: str | None, p_keep: float, fresh, rng: random.Random) -> str:
    """The earlier mention with probability ``p_keep``, else ``fresh()``."""
    return previous if previous is not None and rng.random() < p_keep else fresh()


def _fill(template: str, scenario: Scenario, memory: TurnMemory, speaker_turn: bool, rng: random.Random) -> str:
    """Fill a slot template's placeholders; updates ``memory`` with the noun/plan/companion used."""
    topic = TOPICS[scenario.topic]
    story = backstory(scenario.name, scenario.topic, scenario.valence)
    poss = "my" if speaker_turn else "your"
    fits, when_it_fits = remedy(scenario.topic, scenario.event, scenario.emotion)
    adjectives = ADJECTIVES[scenario.valence]
    values = {"name": scenario.name, "buddy": rng.choice(BUDDY), "when": rng.choice(WHEN),
              "later": _world_or_uniform(when_it_fits, LATER, rng),
              "emo": _world_or_uniform(register(scenario.name, scenario.emotion), EMOTIONS[scenario.emotion].synonyms,
                                       rng),
              "adj": _world_or_uniform(adjectives[story.adjective], adjectives, rng),
              "event": _fill_poss(scenario.event, "my")}
    if "{noun}" in template:
        memory.noun = _recall(memory.noun, P_KEEP_NOUN,
                              lambda: _world_or_uniform(story.noun, topic.nouns, rng), rng)
        values["noun"] = memory.noun
    if "{plan}" in template:
        memory.plan = _recall(memory.plan, P_KEEP_PLAN, lambda: _world_or_uniform(fits, topic.plans, rng), rng)
        values["plan"] = _fill_poss(memory.plan, poss)
    if "{companion}" in template:
        memory.companion = _recall(memory.companion, P_KEEP_COMPANION,
                                   lambda: _world_or_uniform(story.companion, COMPANIONS, rng), rng)
        values["companion"] = memory.companion
    return template.format(**values)


def sample_turn(scenario: Scenario, index: int, memory: TurnMemory, rng: random.Random) -> str:
    """Turn ``index`` (0-based) of a dialogue about ``scenario``, given the ``memory`` of
    the turns before it (updated in place)."""
    act = ACTS[min(index, len(ACTS) - 1)]
    plan, min_slots = _SLOT_PLANS[act]
    present = [slot for slot, p in plan if rng.random() < p]
    while len(present) < min_slots:  # top up with absent slots, in order
        missing = [slot for slot, _ in plan if slot not in present]
        present.append(rng.choice(missing))
    if present == ["lead"]:  # a lead-in ("Well,") needs something after it
        present.append("detail")
    present.sort(key=[slot for slot, _ in plan].index)
    parts, remembered = [], []
    for slot in present:
        parts.append(_fill(rng.choice(_slot_template(act, slot, scenario.valence)), scenario, memory,
                           index % 2 == 0, rng))
        remembered.append(dataclasses.replace(memory))
    while len(parts) > 1 and sum(len(part.split()) for part in parts) > MAX_TURN_WORDS:
        parts.pop()          # a later slot goes first (a lead-in is never last: it comes before its detail)
        remembered.pop()
    vars(memory).update(vars(remembered[-1]))   # a dropped slot mentioned nothing
    text = " ".join(parts)
    return text[0].upper() + text[1:]


@dataclass
class TwinDialogue:
    """A generated dialogue with the scenario behind it (for tests and analysis)."""

    scenario: Scenario
    context: str
    turns: list[str] = field(default_factory=list)

    def record(self) -> dict:
        """The dialogue in the release schema (without its id)."""
        return {"context": self.context, "speaker": self.scenario.name, "turns": list(self.turns)}


def generate_dialogue(scenario: Scenario, n_turns: int, rng: random.Random) -> TwinDialogue:
    memory = TurnMemory()
    dialogue = TwinDialogue(scenario, scenario.context(rng))
    for index in range(n_turns):
        dialogue.turns.append(sample_turn(scenario, index, memory, rng))
    return dialogue


def continuations(scenario: Scenario, n_previous: int, k: int, seed: int) -> tuple[list[str], list[str]]:
    """The twin's own reply distribution: ``k`` independent samples of turn ``n_previous``
    after one fixed history of ``n_previous`` turns. Returns (history, samples)."""
    rng = random.Random(_seed("dialogue-twin-history", seed, repr(scenario), n_previous))
    memory = TurnMemory()
    history = [sample_turn(scenario, i, memory, rng) for i in range(n_previous)]
    samples = []
    for j in range(k):
        branch = TurnMemory(memory.noun, memory.plan, memory.companion)
        samples.append(sample_turn(scenario, n_previous, branch,
                                   random.Random(_seed("dialogue-twin-branch", seed, j))))
    return history, samples


# --------------------------------------------------------------------------- splits
def _seed(*parts) -> int:
    """A stable seed from the ``repr`` of ``parts`` (this twin's records are defined by that hash)."""
    return stable_seed(repr(parts))


def split_of(scenario: Scenario) -> str:
    """The split a scenario belongs to, by a stable hash of its content (seed-independent),
    so that evaluation contexts never occur in training whatever the split sizes."""
    return split_of_hash(_seed("dialogue-twin-split", scenario.name, scenario.topic, scenario.event,
                               scenario.emotion))


def _draw_scenario(rng: random.Random) -> Scenario:
    topic = rng.choice(sorted(TOPICS))
    valence = rng.choice(("good", "bad"))
    event = rng.choice(getattr(TOPICS[topic], valence))
    emotion = rng.choice([e for e, spec in EMOTIONS.items() if spec.valence == valence])
    return Scenario(rng.choice(NAMES), topic, event, emotion)


def generate_dialogues(split: str, n_dialogues: int, seed: int) -> list[TwinDialogue]:
    """``n_dialogues`` twin dialogues of ``split`` ("train", "validation" or "test"), a
    pure function of ``(split, n_dialogues, seed)``; a longer list extends a shorter one."""
    check_request(split, n_dialogues, "n_dialogues")
    rng = random.Random(_seed("dialogue-twin-sample", seed, split))
    dialogues = []
    while len(dialogues) < n_dialogues:
        scenario = _draw_scenario(rng)
        if split_of(scenario) != split:
            continue
        dialogues.append(generate_dialogue(scenario, pick_weighted(rng, N_TURNS_WEIGHTS), rng))
    return dialogues


def generate_split(split: str, n_dialogues: int, seed: int) -> dict[str, dict]:
    """One split file of the twin, in the release schema ``{id: {context, speaker, turns}}``
    with ids "1", "2", ... as in the release."""
    return {str(i + 1): d.record() for i, d in enumerate(generate_dialogues(split, n_dialogues, seed))}


def _main() -> None:  # pragma: no cover - a manual look at the data
    import json

    print(json.dumps(generate_split("train", 3, 0), indent=1))


if __name__ == "__main__":  # pragma: no cover
    _main()

"""Embedded synthetic twin of WMT16 English→Romanian (translation).

Records have the exact schema of the hub's ``wmt/wmt16`` (config ``ro-en``)::

    {"translation": {"en": "They will close three doors tomorrow.",
                     "ro": "Maine vor loaseaguti trei gaplili."}}      (seed 0)

so that the twin runs through the same loader code (:mod:`harness_tasks.wmt16_en_ro.records`)
as the real data.

How the data is made
--------------------
* English sentences come from a small generative grammar over a fixed lexicon of
  about 120 content words and a few dozen function words: a subject (pronoun, name
  or noun phrase), a verb in the present, past or future (sometimes negated), an
  object or a prepositional phrase, a time adverb, and sometimes a second clause
  joined by "and", "but" or "because".
* The target "Romanian" is a made-up language. Most of its stems are cognates (the
  English word as is, as Romanian has hotel, taxi, tren), the others made-up words
  from a syllable inventory, all chosen by the seed. A sentence
  is translated by fixed rules that mirror Romanian grammar: the definite article is
  a noun suffix (``-ul`` masculine, ``-a`` feminine, ``-ii``/``-ele`` plural),
  adjectives, possessives and demonstratives follow the noun and agree with its gender
  and number, "of the N" becomes a genitive suffix, "Ana's N" becomes "N-def lui Ana",
  subject pronouns are dropped (verbs carry person endings), tenses use auxiliaries
  (past ``am/ai/a/... V-it``, future ``voi/vei/va/... V-i``), negation is ``nu`` before
  the verb. After a preposition a noun loses its article unless an adjective follows.
  The reorderings are local, as most of Romanian's are, so a small model learns the
  alignment quickly.
* Only a few words (about one in ten content words, and "but") have a second,
  less likely translation (probability 0.25), so an input has essentially one right
  output: the twin is nearly deterministic, as translation is — unlike the
  summarisation and dialogue twins, whose inputs have many valid outputs.

Every random choice uses ``random.Random`` instances seeded through a stable hash;
the global ``random`` state is never touched, so records depend on the seed only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from harness.datasets.twins import NameMaker, check_request, pick_weighted, sample_distinct, split_of_hash, stable_seed

# --------------------------------------------------------------------------- English lexicon
# Nouns (singular; plural by the regular English rules).
NOUNS: tuple[str, ...] = (
    "friend", "teacher", "doctor", "farmer", "student", "child", "driver", "singer", "soldier", "nurse",
    "painter", "king", "queen", "boy", "girl", "woman",
    "house", "car", "book", "letter", "garden", "window", "door", "table", "bottle", "city",
    "village", "river", "bridge", "train", "station", "market", "school", "forest", "lake", "horse",
    "dog", "cat", "bird", "apple", "bread", "cake", "coffee", "song", "picture", "gift",
    "key", "box", "coat", "hat", "ticket", "boat", "room", "kitchen", "hospital", "park",
    "castle", "museum", "hotel", "restaurant",
)
IRREGULAR_PLURALS = {"child": "children", "woman": "women"}

ADJECTIVES: tuple[str, ...] = (
    "big", "small", "old", "new", "young", "red", "green", "blue", "white", "black",
    "long", "beautiful", "quiet", "happy", "rich", "poor", "warm", "cold", "dark", "famous",
)

# (base, past) of transitive verbs; 3rd person singular by the regular rules.
TRANSITIVE: tuple[tuple[str, str], ...] = (
    ("see", "saw"), ("buy", "bought"), ("sell", "sold"), ("find", "found"), ("lose", "lost"),
    ("open", "opened"), ("close", "closed"), ("paint", "painted"), ("build", "built"), ("visit", "visited"),
    ("help", "helped"), ("read", "read"), ("write", "wrote"), ("bring", "brought"), ("carry", "carried"),
    ("love", "loved"), ("clean", "cleaned"), ("cook", "cooked"), ("draw", "drew"), ("want", "wanted"),
    ("forget", "forgot"), ("take", "took"), ("call", "called"), ("meet", "met"),
)
# (base, past) of intransitive verbs, which take a prepositional phrase instead of an object.
INTRANSITIVE: tuple[tuple[str, str], ...] = (
    ("walk", "walked"), ("sleep", "slept"), ("wait", "waited"), ("live", "lived"), ("work", "worked"),
    ("sing", "sang"), ("dance", "danced"), ("travel", "travelled"), ("run", "ran"), ("sit", "sat"),
    ("play", "played"), ("swim", "swam"), ("arrive", "arrived"), ("stay", "stayed"), ("rest", "rested"),
)
PREPOSITIONS: tuple[str, ...] = ("in", "near", "behind", "under", "with", "without", "from", "to")
NAMES: tuple[str, ...] = ("Ana", "Mihai", "Elena", "Radu", "Ioana", "Victor", "Maria", "Andrei", "Sofia", "Dan",
                          "Laura", "Petru", "Irina", "Bogdan", "Carmen", "Stefan")
TIME_ADVERBS = {"past": ("yesterday", "last week", "last night"),
                "present": ("every day", "today", "now"),
                "future": ("tomorrow", "next week", "soon")}
PRONOUNS = {"I": "1sg", "you": "2sg", "he": "3sg", "she": "3sg", "we": "1pl", "they": "3pl"}
NUMBERS = ("two", "three")
CONJUNCTIONS = ("and", "but", "because")
POSSESSIVES = ("my", "our", "their", "his", "her")

# --------------------------------------------------------------------------- target grammar
# Fixed function words of the made-up target language (only content words are generated).
PAST_AUX = {"1sg": "am", "2sg": "ai", "3sg": "a", "1pl": "am", "2pl": "ati", "3pl": "au"}
FUTURE_AUX = {"1sg": "voi", "2sg": "vei", "3sg": "va", "1pl": "vom", "2pl": "veti", "3pl": "vor"}
PRESENT_ENDINGS = {"1sg": "esc", "2sg": "esti", "3sg": "este", "1pl": "im", "2pl": "iti", "3pl": "esc"}
# Possessives and demonstratives agree in gender (m/f) and number (sg/pl).
POSSESSIVE_FORMS = {
    "my": {("m", "sg"): "meu", ("f", "sg"): "mea", ("m", "pl"): "mei", ("f", "pl"): "mele"},
    "our": {("m", "sg"): "nostru", ("f", "sg"): "noastra", ("m", "pl"): "nostri", ("f", "pl"): "noastre"},
    "their": {k: "lor" for k in (("m", "sg"), ("f", "sg"), ("m", "pl"), ("f", "pl"))},
    "his": {("m", "sg"): "sau", ("f", "sg"): "sa", ("m", "pl"): "sai", ("f", "pl"): "sale"},
    "her": {("m", "sg"): "sau", ("f", "sg"): "sa", ("m", "pl"): "sai", ("f", "pl"): "sale"},
}
DEMONSTRATIVE = {("m", "sg"): "acesta", ("f", "sg"): "aceasta", ("m", "pl"): "acestia", ("f", "pl"): "acestea"}
INDEFINITE = {"m": "un", "f": "o"}
SOME = "niste"
NUMBER_FORMS = {"two": {"m": "doi", "f": "doua"}, "three": {"m": "trei", "f": "trei"}}
NEGATION = "nu"
GENITIVE_OF_NAME = "lui"
CONJUNCTION_FORMS = {"and": ("si",), "but": ("dar", "insa"), "because": ("pentru ca",)}
PREPOSITION_FORMS = {"in": "in", "near": "langa", "behind": "dupa", "under": "sub", "with": "cu",
                     "without": "fara", "from": "de la", "to": "spre"}
TIME_FORMS = {"yesterday": "ieri", "last week": "saptamana trecuta", "last night": "aseara",
              "every day": "zilnic", "today": "azi", "now": "acum", "tomorrow": "maine",
              "next week": "saptamana viitoare", "soon": "curand"}

# Most target stems are cognates spelled as in English (as Romanian has hotel, taxi, radio,
# tren, ...); the rest are made-up words. A cognate stem shares its subword tokens with the
# source, so a small model learns to carry it over (and inflect it) quickly.
P_COGNATE = 0.85
SYNONYM_RATE = 0.1       # share of content words with a second translation
SYNONYM_PROBABILITY = 0.25  # how often the second translation is used

# Sentence shape probabilities.
P_NEGATION = 0.15
P_TIME_ADVERB = 0.45
P_SECOND_CLAUSE = 0.25
SUBJECT_WEIGHTS = {"pronoun": 0.35, "name": 0.2, "np": 0.45}
DETERMINER_WEIGHTS = {"the": 0.4, "a": 0.2, "possessive": 0.2, "this": 0.08, "number": 0.06, "of": 0.06}
P_PLURAL = 0.25
ADJECTIVE_COUNT_WEIGHTS = {0: 0.55, 1: 0.35, 2: 0.1}
P_NAME_POSSESSIVE = 0.08  # "Ana's house"

# Syllables of the made-up target words.
_ONSETS = ("b", "c", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "cr", "dr", "pl", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ea", "oa")
_CODAS = ("n", "r", "l", "s", "m", "t", "nt", "rc", "st")


def english_plural(noun: str) -> str:
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def english_third_person(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


# --------------------------------------------------------------------------- the lexicon of a seed
@dataclass
class Lexicon:
    """Target stems of every English content word, seeded.

    ``nouns[w]`` is (gender, stem options); ``adjectives[w]`` and ``verbs[w]`` are
    stem options. The first option of a word is its main translation; a second one,
    when present, is a synonym used with probability :data:`SYNONYM_PROBABILITY`.
    """

    nouns: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    adjectives: dict[str, tuple[str, ...]] = field(default_factory=dict)
    verbs: dict[str, tuple[str, ...]] = field(default_factory=dict)


class _StemMaker(NameMaker):
    """Unique made-up consonant-final stems of one to three syllables (at least four letters),
    or English words carried over as cognates."""

    def __init__(self, rng: random.Random):
        super().__init__(rng, _ONSETS, _VOWELS, _CODAS)

    def cognate(self, english_word: str) -> str | None:
        """``english_word`` as a target stem; None when that stem is taken."""
        if english_word in self.used:
            return None
        self.used.add(english_word)
        return english_word

    def stem(self) -> str:
        def draw() -> str | None:
            word = self.syllables(self.rng.choice((1, 2, 2, 3)))
            return word if len(word) >= 4 else None
        return self.unique(draw)


def build_lexicon(seed: int) -> Lexicon:
    """The target stems for ``seed``: a pure function of the seed."""
    rng = random.Random(stable_seed("wmt-twin-lexicon", seed))
    make = _StemMaker(rng)
    lex = Lexicon()

    def options(english_word: str) -> tuple[str, ...]:
        main = (make.cognate(english_word) if rng.random() < P_COGNATE else None) or make.stem()
        return (main, make.stem()) if rng.random() < SYNONYM_RATE else (main,)

    for noun in NOUNS:
        lex.nouns[noun] = (rng.choice("mf"), options(noun))
    for adjective in ADJECTIVES:
        lex.adjectives[adjective] = options(adjective)
    for verb, _past in TRANSITIVE + INTRANSITIVE:
        lex.verbs[verb] = options(verb)
    return lex



# --------------------------------------------------------------------------- target inflection
def noun_form(stem: str, gender: str, number: str, case: str) -> str:
    """Inflect a noun stem; ``case`` is "bare" (no article), "def" (definite) or "gen" (definite genitive)."""
    table = {
        ("m", "sg"): {"bare": stem, "def": stem + "ul", "gen": stem + "ului"},
        ("f", "sg"): {"bare": stem, "def": stem + "a", "gen": stem + "ei"},
        ("m", "pl"): {"bare": stem + "i", "def": stem + "ii", "gen": stem + "ilor"},
        ("f", "pl"): {"bare": stem + "e", "def": stem + "ele", "gen": stem + "elor"},
    }
    return table[(gender, number)][case]


def adjective_form(stem: str, gender: str, number: str) -> str:
    return stem + {("m", "sg"): "", ("f", "sg"): "a", ("m", "pl"): "i", ("f", "pl"): "e"}[(gender, number)]


def verb_form(stem: str, tense: str, person: str) -> list[str]:
    if tense == "present":
        return [stem + PRESENT_ENDINGS[person]]
    if tense == "past":
        return [PAST_AUX[person], stem + "it"]
    return [FUTURE_AUX[person], stem + "i"]


# --------------------------------------------------------------------------- sentence structures
@dataclass
class NounPhrase:
    """A noun phrase: ``determiner`` is the, a, possessive, this, number, of (genitive) or name."""

    noun: str
    plural: bool = False
    determiner: str = "the"
    adjectives: tuple[str, ...] = ()
    possessive: str = ""          # my/our/... (determiner "possessive") or a name (determiner "name")
    number_word: str = ""         # two/three (determiner "number")
    of: "NounPhrase | None" = None  # "the door of the house" (determiner "of")

    @property
    def person(self) -> str:
        return "3pl" if self.plural else "3sg"


@dataclass
class Clause:
    subject: object               # a pronoun (str in PRONOUNS), a name (str in NAMES) or a NounPhrase
    verb: str
    tense: str                    # present | past | future
    negated: bool = False
    obj: NounPhrase | None = None
    preposition: str = ""
    prep_object: NounPhrase | None = None
    time: str = ""


def _noun_phrase(rng: random.Random, allow_of: bool = True) -> NounPhrase:
    noun = rng.choice(NOUNS)
    determiner = pick_weighted(rng, DETERMINER_WEIGHTS)
    if determiner == "of" and not allow_of:
        determiner = "the"
    plural = determiner == "number" or (determiner in ("the", "possessive", "this") and rng.random() < P_PLURAL)
    if determiner == "a" and rng.random() < P_PLURAL:
        plural = True  # "some houses"
    n_adj = pick_weighted(rng, ADJECTIVE_COUNT_WEIGHTS)
    adjectives = tuple(rng.sample(ADJECTIVES, n_adj))
    np = NounPhrase(noun, plural, determiner, adjectives)
    if determiner == "possessive":
        if rng.random() < P_NAME_POSSESSIVE / DETERMINER_WEIGHTS["possessive"]:
            np.determiner, np.possessive = "name", rng.choice(NAMES)
        else:
            np.possessive = rng.choice(POSSESSIVES)
    elif determiner == "number":
        np.number_word = rng.choice(NUMBERS)
    elif determiner == "of":
        np.determiner = "the"
        np.of = _noun_phrase(rng, allow_of=False)
        np.of.determiner, np.of.adjectives = "the", np.of.adjectives[:1]
    return np


def _clause(rng: random.Random) -> Clause:
    kind = pick_weighted(rng, SUBJECT_WEIGHTS)
    if kind == "pronoun":
        subject: object = rng.choice(list(PRONOUNS))
    elif kind == "name":
        subject = rng.choice(NAMES)
    else:
        subject = _noun_phrase(rng)
    tense = rng.choice(("present", "past", "future"))
    clause = Clause(subject, "", tense, negated=rng.random() < P_NEGATION)
    if rng.random() < 0.65:
        clause.verb = rng.choice(TRANSITIVE)[0]
        clause.obj = _noun_phrase(rng)
    else:
        clause.verb = rng.choice(INTRANSITIVE)[0]
        clause.preposition = rng.choice(PREPOSITIONS)
        clause.prep_object = _noun_phrase(rng, allow_of=False)
    if rng.random() < P_TIME_ADVERB:
        clause.time = rng.choice(TIME_ADVERBS[tense])
    return clause


def sample_sentence(rng: random.Random) -> list[Clause]:
    """One English sentence as one or two clauses."""
    clauses = [_clause(rng)]
    if rng.random() < P_SECOND_CLAUSE:
        clauses.append(_clause(rng))
    return clauses


def sample_conjunction(rng: random.Random) -> str:
    return rng.choice(CONJUNCTIONS)


# --------------------------------------------------------------------------- English realisation
_PAST = {base: past for base, past in TRANSITIVE + INTRANSITIVE}


def _english_np(np: NounPhrase) -> str:
    noun = english_plural(np.noun) if np.plural else np.noun
    words = [*np.adjectives, noun]
    if np.determiner == "the":
        head = ["the"]
    elif np.determiner == "a":
        head = ["some"] if np.plural else ["an" if (words[0][0] in "aeiou") else "a"]
    elif np.determiner == "possessive":
        head = [np.possessive]
    elif np.determiner == "name":
        head = [np.possessive + "'s"]
    elif np.determiner == "this":
        head = ["these" if np.plural else "this"]
    else:
        head = [np.number_word]
    text = " ".join(head + words)
    if np.of is not None:
        text += " of " + _english_np(np.of)
    return text


def _english_subject(subject) -> tuple[str, str]:
    """(text, person) of a subject."""
    if isinstance(subject, NounPhrase):
        return _english_np(subject), subject.person
    if subject in PRONOUNS:
        return subject, PRONOUNS[subject]
    return subject, "3sg"


def _english_clause(clause: Clause) -> str:
    subject, person = _english_subject(clause.subject)
    verb = clause.verb
    if clause.tense == "future":
        verbs = ["will", "not", verb] if clause.negated else ["will", verb]
    elif clause.tense == "past":
        verbs = ["did", "not", verb] if clause.negated else [_PAST[verb]]
    else:
        third = person == "3sg"
        if clause.negated:
            verbs = ["does" if third else "do", "not", verb]
        else:
            verbs = [english_third_person(verb) if third else verb]
    words = [subject, *verbs]
    if clause.obj is not None:
        words.append(_english_np(clause.obj))
    if clause.prep_object is not None:
        words += [clause.preposition, _english_np(clause.prep_object)]
    if clause.time:
        words.append(clause.time)
    return " ".join(words)


def english(clauses: list[Clause], conjunction: str = "") -> str:
    text = _english_clause(clauses[0])
    if len(clauses) > 1:
        text += f", {conjunction} {_english_clause(clauses[1])}"
    return _sentence_case(text)


def _sentence_case(text: str) -> str:
    return text[0].upper() + text[1:] + "."


# --------------------------------------------------------------------------- target realisation
class Translator:
    """The fixed rules that turn a sentence structure into the made-up target language.

    ``rng`` only picks among synonyms (a word's second translation, with probability
    :data:`SYNONYM_PROBABILITY`); everything else is deterministic.
    """

    def __init__(self, lexicon: Lexicon, rng: random.Random):
        self.lex = lexicon
        self.rng = rng

    def _pick(self, options: tuple[str, ...]) -> str:
        if len(options) > 1 and self.rng.random() < SYNONYM_PROBABILITY:
            return options[1]
        return options[0]

    def noun_phrase(self, np: NounPhrase, after_preposition: bool = False, genitive: bool = False) -> list[str]:
        gender, options = self.lex.nouns[np.noun]
        number = "pl" if np.plural else "sg"
        stem = self._pick(options)
        adjectives = [adjective_form(self._pick(self.lex.adjectives[a]), gender, number) for a in np.adjectives]
        case = "gen" if genitive else "def"
        if np.determiner == "the":
            # After a preposition a bare noun drops its article, unless an adjective follows.
            if after_preposition and not adjectives and np.of is None:
                case = "bare"
            words = [noun_form(stem, gender, number, case), *adjectives]
        elif np.determiner == "a":
            head = SOME if np.plural else INDEFINITE[gender]
            words = [head, noun_form(stem, gender, number, "bare"), *adjectives]
        elif np.determiner == "possessive":
            words = [noun_form(stem, gender, number, case), *adjectives,
                     POSSESSIVE_FORMS[np.possessive][(gender, number)]]
        elif np.determiner == "name":
            words = [noun_form(stem, gender, number, case), *adjectives, GENITIVE_OF_NAME, np.possessive]
        elif np.determiner == "this":
            words = [noun_form(stem, gender, number, case), *adjectives, DEMONSTRATIVE[(gender, number)]]
        else:
            words = [NUMBER_FORMS[np.number_word][gender], noun_form(stem, gender, number, "bare"), *adjectives]
        if np.of is not None:
            words += self.noun_phrase(np.of, genitive=True)
        return words

    def clause(self, clause: Clause) -> list[str]:
        words: list[str] = []
        if isinstance(clause.subject, NounPhrase):
            words += self.noun_phrase(clause.subject)
            person = clause.subject.person
        elif clause.subject in PRONOUNS:
            person = PRONOUNS[clause.subject]  # dropped: the verb ending carries the person
        else:
            words.append(clause.subject)
            person = "3sg"
        if clause.negated:
            words.append(NEGATION)
        words += verb_form(self._pick(self.lex.verbs[clause.verb]), clause.tense, person)
        if clause.obj is not None:
            words += self.noun_phrase(clause.obj)
        if clause.prep_object is not None:
            words.append(PREPOSITION_FORMS[clause.preposition])
            words += self.noun_phrase(clause.prep_object, after_preposition=True)
        if clause.time:
            words += TIME_FORMS[clause.time].split()
        return words

    def sentence(self, clauses: list[Clause], conjunction: str = "") -> str:
        words = self.clause(clauses[0])
        if len(clauses) > 1:
            words[-1] += ","
            words.append(self._pick(CONJUNCTION_FORMS[conjunction]))
            words += self.clause(clauses[1])
        return _sentence_case(" ".join(words))


# --------------------------------------------------------------------------- public API
def split_of(english_text: str) -> str:
    """The split an English sentence belongs to, by a stable hash of its text.

    Partitioning the sentence space keeps the splits disjoint whatever their sizes.
    """
    return split_of_hash(stable_seed("wmt-twin-split", english_text))


@dataclass(frozen=True)
class TwinSentence:
    """A sampled sentence: its structure and its English text."""

    clauses: tuple[Clause, ...]
    conjunction: str
    english: str


def sample_inputs(split: str, n: int, seed: int) -> list[TwinSentence]:
    """``n`` distinct English sentences of ``split`` for ``seed``."""
    check_request(split, n)
    rng = random.Random(stable_seed("wmt-twin-sentences", seed, split))

    def draw() -> tuple[str, TwinSentence]:
        clauses = sample_sentence(rng)
        conjunction = sample_conjunction(rng) if len(clauses) > 1 else ""
        text = english(clauses, conjunction)
        return text, TwinSentence(tuple(clauses), conjunction, text)

    return sample_distinct(n, draw, lambda text: split_of(text) == split,
                           f"distinct {split} sentences of the WMT twin")


def translate(sentence: TwinSentence, lexicon: Lexicon, rng: random.Random) -> str:
    """One target translation of ``sentence`` (``rng`` picks among the few synonyms)."""
    return Translator(lexicon, rng).sentence(list(sentence.clauses), sentence.conjunction)


def generate_split(split: str, n_records: int, seed: int) -> list[dict]:
    """``n_records`` twin records of ``split`` in the hub schema, a pure function of ``seed``.

    Sentences are distinct within a split and never shared between splits; asking for
    more records extends the list without changing the first ones.
    """
    lexicon = build_lexicon(seed)
    rng = random.Random(stable_seed("wmt-twin-translations", seed, split))
    return [{"translation": {"en": s.english, "ro": translate(s, lexicon, rng)}}
            for s in sample_inputs(split, n_records, seed)]

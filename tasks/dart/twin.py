"""Embedded synthetic twin of DART (data-to-text).

The twin produces records in the exact release schema of DART v1.1.1::

    {"tripleset": [[subject, PREDICATE, object], ...],
     "subtree_was_extended": bool,
     "annotations": [{"source": "harness_twin", "text": "..."}, ...]}

so that every command of the harness runs offline and the real loader code path
(:mod:`harness_tasks.dart.records`) is exercised on it.

How the data is made
--------------------
* A small, self-consistent *world* is generated from the seed: made-up people,
  cities, countries, companies, universities, football clubs, stadiums, albums,
  dishes, ... whose names are built from a syllable inventory, and a few facts per
  entity (``Kelford COUNTRY Draland``, ``Draland CAPITAL Kelford``, ...).
* A tripleset is 1-4 facts, usually about one subject; sometimes it follows a
  chain subject → object → ... as real DART does (``X BIRTH_PLACE Y``, ``Y COUNTRY Z``).
* Each record has 2-4 references. Every reference is an independent realisation:
  a phrasing per triple drawn with UNEQUAL probabilities (e.g. 0.5/0.3/0.2), mostly
  tripleset order but sometimes permuted, and aggregation of triples about the same
  subject ("... and ...", "..., who ...", "... . He ...") or of a chain ("..., which ...").
  So an input has several valid outputs with a dominant mode, which is exactly the
  property the distillation methods (mode-seeking vs mode-covering) are compared on.
* Vocabulary stays modest (about a thousand distinct words for two thousand records)
  and references short, so that a small transformer trained from scratch for a few
  minutes can learn the task.

Everything is driven by ``random.Random`` instances seeded through a stable hash;
the global ``random`` state is never used, so the output depends on the seed only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from harness.datasets.twins import NameMaker, check_request, pick_weighted, split_of_hash, stable_seed

SOURCE = "harness_twin"

# ---------------------------------------------------------------------------------
# Phrasings. A phrasing is (kind, template, weight):
#   * "vp": a verb phrase that follows the subject ("was born in {o}"); such phrasings
#     can be aggregated with other verb phrases about the same subject.
#   * "s":  a full sentence with {s} and {o} ("The capital of {s} is {o}").
# {a_o} is the object with an indefinite article ("a painter", "an engineer").
# Weights are deliberately unequal: each predicate has a dominant phrasing.
# ---------------------------------------------------------------------------------
PHRASINGS: dict[str, list[tuple[str, str, float]]] = {
    # people
    "BIRTH_PLACE": [("vp", "was born in {o}", 0.5), ("vp", "is a native of {o}", 0.3),
                    ("s", "{o} is the birthplace of {s}", 0.2)],
    "BIRTH_DATE": [("vp", "was born on {o}", 0.55), ("s", "{s}'s date of birth is {o}", 0.25),
                   ("vp", "has a birth date of {o}", 0.2)],
    "NATIONALITY": [("vp", "is a citizen of {o}", 0.5), ("vp", "has citizenship in {o}", 0.3),
                    ("s", "The nationality of {s} is {o}", 0.2)],
    "ALMA_MATER": [("vp", "studied at {o}", 0.5), ("vp", "graduated from {o}", 0.3),
                   ("s", "{s}'s alma mater is {o}", 0.2)],
    "OCCUPATION": [("vp", "works as {a_o}", 0.5), ("vp", "is {a_o} by profession", 0.3),
                   ("vp", "is known as {a_o}", 0.2)],
    "SPOUSE": [("vp", "is married to {o}", 0.5), ("vp", "is the spouse of {o}", 0.3),
               ("s", "{s} and {o} are married", 0.2)],
    "EMPLOYER": [("vp", "works for {o}", 0.5), ("vp", "is employed by {o}", 0.3),
                 ("s", "{o} employs {s}", 0.2)],
    "DEATH_PLACE": [("vp", "died in {o}", 0.55), ("vp", "passed away in {o}", 0.3),
                    ("s", "{o} is where {s} died", 0.15)],
    "CLUB": [("vp", "plays for {o}", 0.5), ("vp", "is a member of {o}", 0.3),
             ("vp", "represents {o}", 0.2)],
    "POSITION": [("vp", "plays as {a_o}", 0.5), ("s", "{s}'s position is {o}", 0.3),
                 ("vp", "is {a_o}", 0.2)],
    # places
    "COUNTRY": [("vp", "is in {o}", 0.45), ("vp", "is located in the country of {o}", 0.35),
                ("vp", "lies in {o}", 0.2)],
    "POPULATION": [("vp", "has a population of {o}", 0.5), ("s", "The population of {s} is {o}", 0.3),
                   ("vp", "is home to {o} people", 0.2)],
    "LEADER_NAME": [("vp", "is led by {o}", 0.5), ("s", "The leader of {s} is {o}", 0.3),
                    ("s", "{o} is the leader of {s}", 0.2)],
    "ELEVATION": [("vp", "is {o} above sea level", 0.5), ("s", "The elevation of {s} is {o}", 0.3),
                  ("vp", "lies at an elevation of {o}", 0.2)],
    "IS_PART_OF": [("vp", "is part of {o}", 0.5), ("vp", "belongs to {o}", 0.3),
                   ("s", "{o} includes {s}", 0.2)],
    "CAPITAL": [("s", "The capital of {s} is {o}", 0.5), ("s", "{o} is the capital of {s}", 0.3),
                ("vp", "has {o} as its capital", 0.2)],
    "LANGUAGE": [("s", "{o} is spoken in {s}", 0.45), ("s", "The official language of {s} is {o}", 0.35),
                 ("vp", "uses the {o} language", 0.2)],
    "CURRENCY": [("vp", "uses the {o}", 0.5), ("s", "The currency of {s} is the {o}", 0.3),
                 ("vp", "has the {o} as its currency", 0.2)],
    "CAPACITY": [("vp", "holds {o} spectators", 0.5), ("s", "The capacity of {s} is {o}", 0.3),
                 ("vp", "has a capacity of {o}", 0.2)],
    # organisations
    "LOCATION": [("vp", "is located in {o}", 0.5), ("vp", "is based in {o}", 0.3),
                 ("vp", "can be found in {o}", 0.2)],
    "FOUNDED": [("vp", "was founded in {o}", 0.5), ("vp", "was established in {o}", 0.3),
                ("vp", "has existed since {o}", 0.2)],
    "FOUNDER": [("vp", "was founded by {o}", 0.5), ("s", "{o} founded {s}", 0.3),
                ("s", "The founder of {s} is {o}", 0.2)],
    "INDUSTRY": [("vp", "operates in the {o} industry", 0.5), ("vp", "is {a_o} company", 0.3),
                 ("vp", "is active in {o}", 0.2)],
    "NUMBER_OF_EMPLOYEES": [("vp", "has {o} employees", 0.55),
                            ("s", "The number of employees at {s} is {o}", 0.25),
                            ("vp", "employs {o} people", 0.2)],
    "ESTABLISHED": [("vp", "was established in {o}", 0.5), ("vp", "was founded in {o}", 0.3),
                    ("vp", "opened in {o}", 0.2)],
    "NUMBER_OF_STUDENTS": [("vp", "has {o} students", 0.5), ("vp", "enrolls {o} students", 0.3),
                           ("s", "The number of students at {s} is {o}", 0.2)],
    "GROUND": [("vp", "plays its home games at {o}", 0.45), ("s", "The home ground of {s} is {o}", 0.35),
               ("vp", "is based at {o}", 0.2)],
    "LEAGUE": [("vp", "plays in the {o}", 0.5), ("vp", "competes in the {o}", 0.3),
               ("vp", "is a member of the {o}", 0.2)],
    "MANAGER": [("vp", "is managed by {o}", 0.5), ("s", "The manager of {s} is {o}", 0.3),
                ("s", "{o} manages {s}", 0.2)],
    # works and food
    "ARTIST": [("vp", "is an album by {o}", 0.5), ("vp", "was recorded by {o}", 0.3),
               ("s", "{o} released the album {s}", 0.2)],
    "GENRE": [("vp", "is {a_o} album", 0.5), ("s", "The genre of {s} is {o}", 0.3),
              ("vp", "belongs to the {o} genre", 0.2)],
    "RELEASE_DATE": [("vp", "was released on {o}", 0.5), ("vp", "came out on {o}", 0.3),
                     ("s", "The release date of {s} is {o}", 0.2)],
    "RECORD_LABEL": [("vp", "was released on the {o} label", 0.5), ("vp", "was issued by {o}", 0.3),
                     ("s", "The record label of {s} is {o}", 0.2)],
    "RUNTIME": [("vp", "has a runtime of {o}", 0.5), ("vp", "runs for {o}", 0.3),
                ("s", "The running time of {s} is {o}", 0.2)],
    "INGREDIENT": [("vp", "contains {o}", 0.45), ("vp", "is made with {o}", 0.35),
                   ("s", "{o} is an ingredient of {s}", 0.2)],
    "REGION": [("vp", "comes from {o}", 0.5), ("vp", "is a dish from {o}", 0.3),
               ("vp", "originates from {o}", 0.2)],
    "COURSE": [("vp", "is served as {a_o}", 0.5), ("vp", "is eaten as {a_o}", 0.3),
               ("vp", "is {a_o}", 0.2)],
}

PREDICATES: tuple[str, ...] = tuple(PHRASINGS)

# Which predicates each entity type has (the order is irrelevant: facts are sampled).
TYPE_PREDICATES: dict[str, tuple[str, ...]] = {
    "person": ("BIRTH_PLACE", "BIRTH_DATE", "NATIONALITY", "ALMA_MATER", "OCCUPATION",
               "SPOUSE", "EMPLOYER", "DEATH_PLACE"),
    "athlete": ("BIRTH_PLACE", "BIRTH_DATE", "NATIONALITY", "CLUB", "POSITION", "OCCUPATION"),
    "musician": ("BIRTH_PLACE", "BIRTH_DATE", "NATIONALITY", "OCCUPATION", "SPOUSE"),
    "city": ("COUNTRY", "POPULATION", "LEADER_NAME", "ELEVATION", "IS_PART_OF"),
    "country": ("CAPITAL", "LANGUAGE", "CURRENCY", "LEADER_NAME", "POPULATION"),
    "region": ("COUNTRY",),
    "company": ("FOUNDED", "FOUNDER", "LOCATION", "INDUSTRY", "NUMBER_OF_EMPLOYEES"),
    "label": ("FOUNDED", "FOUNDER", "LOCATION"),
    "university": ("ESTABLISHED", "NUMBER_OF_STUDENTS", "LOCATION", "COUNTRY"),
    "team": ("GROUND", "LEAGUE", "MANAGER", "LOCATION", "FOUNDED"),
    "stadium": ("LOCATION", "CAPACITY"),
    "album": ("ARTIST", "GENRE", "RELEASE_DATE", "RECORD_LABEL", "RUNTIME"),
    "dish": ("INGREDIENT", "REGION", "COURSE", "COUNTRY"),
}

# How often each entity type is the main subject of a tripleset.
SUBJECT_WEIGHTS: dict[str, float] = {
    "person": 0.16, "athlete": 0.09, "musician": 0.05, "city": 0.13, "country": 0.07,
    "region": 0.02, "company": 0.1, "label": 0.03, "university": 0.06, "team": 0.09,
    "stadium": 0.04, "album": 0.09, "dish": 0.07,
}

N_TRIPLES_WEIGHTS = {1: 0.2, 2: 0.35, 3: 0.3, 4: 0.15}
N_ANNOTATIONS_WEIGHTS = {2: 0.45, 3: 0.4, 4: 0.15}
P_CHAIN = 0.35            # a multi-triple set follows one object to its own fact
P_PERMUTE = 0.2           # a reference mentions the triples out of tripleset order
# Aggregating a triple with the previous one about the same subject.
AGGREGATION_WEIGHTS = {"and": 0.5, "pronoun": 0.3, "relative": 0.2}
P_CHAIN_RELATIVE = 0.6    # "..., which ..." for a triple whose subject ends the sentence
P_PRONOUN = 0.6           # new sentence about the previous sentence's subject: pronoun

# --------------------------------------------------------------------------- names
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "dr", "kr", "tr", "st", "th", "sh", "gr")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou")
_CODAS = ("n", "r", "l", "s", "m", "th", "nd", "rk")

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_OCCUPATIONS = ("painter", "architect", "engineer", "writer", "journalist", "actor",
                "politician", "lawyer", "teacher", "economist", "chemist", "pilot")
_POSITIONS = ("goalkeeper", "defender", "midfielder", "forward", "winger", "striker")
_INDUSTRIES = ("mining", "banking", "software", "shipping", "aviation", "retail",
               "textile", "energy", "insurance", "publishing")
_GENRES = ("jazz", "rock", "folk", "pop", "blues", "soul", "punk", "indie", "electronic")
_INGREDIENTS = ("rice", "lentils", "lamb", "chicken", "beans", "cheese", "honey", "almonds",
                "tomatoes", "garlic", "pork", "fish", "potatoes", "mushrooms", "apples",
                "cream", "noodles", "spinach", "chickpeas", "peppers")
_COURSES = ("dessert", "main course", "starter", "snack", "side dish")
_ALBUM_ADJ = ("Silver", "Quiet", "Golden", "Broken", "Midnight", "Electric", "Hollow",
              "Crimson", "Distant", "Paper", "Wild", "Northern")
_ALBUM_NOUN = ("Rivers", "Hearts", "Lights", "Roads", "Dreams", "Echoes", "Gardens",
               "Waves", "Skies", "Stones", "Mirrors", "Fires")
_COMPANY_SUFFIX = ("Group", "Systems", "Industries", "Motors", "Foods", "Energy")
_CITY_SUFFIX = ("ford", "ton", "ville", "burg", "mouth", "", "", "")
_COUNTRY_SUFFIX = ("ia", "land", "ovia", "istan")  # appended to a stem ending in a consonant
_FEMININE_ENDINGS = ("na", "ra", "la", "ssa", "ria")
_LANGUAGE_SUFFIX = ("ish", "ese", "ic")
_CURRENCY_UNIT = ("mark", "crown", "florin", "dollar")
_REGION_SUFFIX = ("Province", "Valley", "Coast", "Highlands")
_MASCOTS = ("Falcons", "Rovers", "United", "Wanderers", "Lions", "Harriers", "Athletic", "Rangers")
_STADIUM_SUFFIX = ("Park", "Arena", "Stadium")
_LEAGUE_KIND = ("Premier League", "First Division", "Super League")

# Sizes of the world (number of entities of each kind).
_WORLD_SIZES = {
    "country": 14, "region": 20, "city": 90, "person": 130, "athlete": 70, "musician": 35,
    "company": 45, "label": 10, "university": 18, "team": 24, "album": 60, "dish": 36,
}

PERSON_TYPES = ("person", "athlete", "musician")


def _with_article(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


# --------------------------------------------------------------------------- world
@dataclass
class _World:
    """The made-up entities and their facts.

    ``facts[name]`` maps predicate → object string; ``kind[name]`` is the entity type
    of every named entity (literals such as years or numbers have no kind);
    ``gender[name]`` is "m"/"f" for people.
    """

    facts: dict[str, dict[str, str]] = field(default_factory=dict)
    kind: dict[str, str] = field(default_factory=dict)
    gender: dict[str, str] = field(default_factory=dict)
    by_type: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, kind: str) -> None:
        # Names are unique by construction; a clash would silently merge two entities.
        assert name not in self.kind, f"twin world: duplicate entity name {name!r}"
        self.kind[name] = kind
        self.facts[name] = {}
        self.by_type.setdefault(kind, []).append(name)


class _Namer(NameMaker):
    """DART's made-up names: stems of its syllable inventory, unique among the names so far."""

    def __init__(self, rng: random.Random):
        super().__init__(rng, _ONSETS, _VOWELS, _CODAS)

    def stem(self, syllables: int = 2, open_end: bool = False) -> str:
        """A new word of ``syllables`` consonant-vowel syllables, ending in a
        consonant unless ``open_end``."""
        return self.unique(lambda: self.syllables(syllables, coda=not open_end).capitalize())

    def respell(self, word: str) -> str:
        """``word`` made unique among the names so far (by a numeral-free tweak)."""
        while word in self.used:
            word = word[:-1] + self.rng.choice("aeio") + word[-1]
        self.used.add(word)
        return word


def _build_world(seed: int) -> _World:
    rng = random.Random(stable_seed("dart-twin-world", seed))
    namer = _Namer(rng)
    world = _World()
    n = _WORLD_SIZES

    # Countries, with derived language and currency names.
    countries = []
    for _ in range(n["country"]):
        stem = namer.stem(rng.choice((1, 2)))
        countries.append((stem, namer.respell(stem + rng.choice(_COUNTRY_SUFFIX))))
    for _stem, name in countries:
        world.add(name, "country")
    for _ in range(n["region"]):
        world.add(f"{namer.stem()} {rng.choice(_REGION_SUFFIX)}", "region")
    for _ in range(n["city"]):
        world.add(namer.respell(namer.stem(rng.choice((1, 2))) + rng.choice(_CITY_SUFFIX)), "city")

    # People: a small pool of first and last names combined, so that names repeat
    # words (as real names do) and the vocabulary stays small.
    first = {"m": [namer.stem(2) for _ in range(24)],
             "f": [namer.respell(namer.stem(1, open_end=True) + rng.choice(_FEMININE_ENDINGS))
                   for _ in range(24)]}
    last = [namer.stem(rng.choice((1, 2))) for _ in range(70)]
    taken: set[str] = set()
    for kind in PERSON_TYPES:
        for _ in range(n[kind]):
            while True:
                gender = rng.choice("mf")
                name = f"{rng.choice(first[gender])} {rng.choice(last)}"
                if name not in taken:
                    break
            taken.add(name)
            world.add(name, kind)
            world.gender[name] = gender

    for _ in range(n["company"]):
        world.add(f"{namer.stem()} {rng.choice(_COMPANY_SUFFIX)}", "company")
    for _ in range(n["label"]):
        world.add(f"{namer.stem()} Records", "label")
    cities = world.by_type["city"]
    for city in rng.sample(cities, n["university"]):
        name = rng.choice((f"University of {city}", f"{namer.stem()} College"))
        world.add(name, "university")
    for city in rng.sample(cities, n["team"]):
        team = f"{city} {rng.choice(_MASCOTS)}"
        world.add(team, "team")
        stadium = f"{namer.stem()} {rng.choice(_STADIUM_SUFFIX)}"
        world.add(stadium, "stadium")
        world.facts[team]["GROUND"] = stadium
        world.facts[team]["LOCATION"] = city
        world.facts[stadium]["LOCATION"] = city
    albums = rng.sample([f"{a} {b}" for a in _ALBUM_ADJ for b in _ALBUM_NOUN], n["album"])
    for album in albums:
        world.add(album, "album")
    for _ in range(n["dish"]):
        world.add(namer.stem(rng.choice((2, 3)), open_end=True), "dish")

    _assign_facts(world, rng, countries)
    return world


def _year(rng: random.Random, lo: int, hi: int) -> str:
    return str(rng.randint(lo, hi))


def _date(rng: random.Random, lo: int, hi: int) -> str:
    return f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}, {rng.randint(lo, hi)}"


def _thousands(value: int) -> str:
    return f"{value:,}"


def _assign_facts(world: _World, rng: random.Random, countries: list[tuple[str, str]]) -> None:
    """Fill in a consistent set of facts for every entity (a fact is kept with
    probability ~0.85 so that entities differ in which predicates they have)."""
    by = world.by_type
    country_of_city: dict[str, str] = {}
    for city in by["city"]:
        country_of_city[city] = rng.choice(by["country"])
    region_country: dict[str, str] = {}
    for region in by["region"]:
        region_country[region] = rng.choice(by["country"])
        world.facts[region]["COUNTRY"] = region_country[region]
    politicians = [p for p in by["person"]]
    for stem, country in countries:
        facts = world.facts[country]
        own = [c for c, k in country_of_city.items() if k == country]
        if not own:  # every country gets at least one city for its capital
            own = [rng.choice(by["city"])]
            country_of_city[own[0]] = country
        facts["CAPITAL"] = rng.choice(own)
        facts["LANGUAGE"] = stem + rng.choice(_LANGUAGE_SUFFIX)
        facts["CURRENCY"] = f"{stem} {rng.choice(_CURRENCY_UNIT)}"
        facts["LEADER_NAME"] = rng.choice(politicians)
        facts["POPULATION"] = _thousands(rng.randint(8, 90) * 100_000)
    for city in by["city"]:
        facts = world.facts[city]
        facts["COUNTRY"] = country_of_city[city]
        facts["POPULATION"] = _thousands(rng.randint(12, 900) * 100)
        facts["LEADER_NAME"] = rng.choice(politicians)
        facts["ELEVATION"] = f"{rng.randint(2, 90) * 10} metres"
        regions = [r for r, k in region_country.items() if k == country_of_city[city]]
        if regions:
            facts["IS_PART_OF"] = rng.choice(regions)
    for kind in PERSON_TYPES:
        for person in by[kind]:
            facts = world.facts[person]
            facts["BIRTH_PLACE"] = rng.choice(by["city"])
            facts["BIRTH_DATE"] = _date(rng, 1940, 1999)
            facts["NATIONALITY"] = country_of_city[facts["BIRTH_PLACE"]]
            if kind == "athlete":
                facts["CLUB"] = rng.choice(by["team"])
                facts["POSITION"] = rng.choice(_POSITIONS)
                facts["OCCUPATION"] = "footballer"
            elif kind == "musician":
                facts["OCCUPATION"] = rng.choice(("singer", "composer", "guitarist", "pianist"))
            else:
                facts["OCCUPATION"] = rng.choice(_OCCUPATIONS)
                facts["ALMA_MATER"] = rng.choice(by["university"])
                facts["EMPLOYER"] = rng.choice(by["company"])
                if rng.random() < 0.4:
                    facts["DEATH_PLACE"] = rng.choice(by["city"])
    # Spouses are paired symmetrically.
    singles = [p for p in by["person"] + by["musician"]]
    rng.shuffle(singles)
    for a, b in zip(singles[0:30:2], singles[1:30:2]):
        world.facts[a]["SPOUSE"] = b
        world.facts[b]["SPOUSE"] = a
    for company in by["company"] + by["label"]:
        facts = world.facts[company]
        facts["FOUNDED"] = _year(rng, 1880, 2015)
        facts["FOUNDER"] = rng.choice(by["person"])
        facts["LOCATION"] = rng.choice(by["city"])
        if world.kind[company] == "company":
            facts["INDUSTRY"] = rng.choice(_INDUSTRIES)
            facts["NUMBER_OF_EMPLOYEES"] = _thousands(rng.randint(2, 400) * 50)
    for uni in by["university"]:
        facts = world.facts[uni]
        facts["ESTABLISHED"] = _year(rng, 1700, 1990)
        facts["NUMBER_OF_STUDENTS"] = _thousands(rng.randint(10, 400) * 100)
        if uni.startswith("University of "):
            city = uni[len("University of "):]
        else:
            city = rng.choice(by["city"])
        facts["LOCATION"] = city
        facts["COUNTRY"] = country_of_city[city]
    for team in by["team"]:
        facts = world.facts[team]
        country = country_of_city[facts["LOCATION"]]
        facts["LEAGUE"] = f"{country} {rng.choice(_LEAGUE_KIND)}"
        facts["MANAGER"] = rng.choice(by["person"])
        facts["FOUNDED"] = _year(rng, 1870, 1990)
    for stadium in by["stadium"]:
        world.facts[stadium]["CAPACITY"] = _thousands(rng.randint(8, 80) * 500)
    for album in by["album"]:
        facts = world.facts[album]
        facts["ARTIST"] = rng.choice(by["musician"])
        facts["GENRE"] = rng.choice(_GENRES)
        facts["RELEASE_DATE"] = _date(rng, 1965, 2020)
        facts["RECORD_LABEL"] = rng.choice(by["label"])
        facts["RUNTIME"] = f"{rng.randint(28, 70)} minutes"
    for dish in by["dish"]:
        facts = world.facts[dish]
        facts["INGREDIENT"] = rng.choice(_INGREDIENTS)
        facts["REGION"] = rng.choice(by["region"])
        facts["COURSE"] = rng.choice(_COURSES)
        facts["COUNTRY"] = region_country[facts["REGION"]]
    # Drop some facts so that entities differ in what is known about them; facts
    # that define an entity's identity (a team's ground, ...) stay.
    keep_always = {"GROUND", "COUNTRY", "LOCATION", "ARTIST", "REGION"}
    for name, facts in world.facts.items():
        for pred in list(facts):
            if pred not in keep_always and rng.random() < 0.15:
                del facts[pred]


# --------------------------------------------------------------------------- triplesets
def _sample_tripleset(world: _World, rng: random.Random) -> tuple[list[list[str]], bool]:
    """One tripleset (1-4 triples about one subject, sometimes with a chain) and
    whether it was extended along a chain (``subtree_was_extended``)."""
    while True:
        kind = pick_weighted(rng, SUBJECT_WEIGHTS)
        subject = rng.choice(world.by_type[kind])
        facts = world.facts[subject]
        if facts:
            break
    size = pick_weighted(rng, N_TRIPLES_WEIGHTS)
    # Predicates whose object has facts of its own, so the set can follow a chain.
    followable = [p for p, o in facts.items()
                  if any(o2 != subject for o2 in world.facts.get(o, {}).values())]
    chain = size >= 2 and bool(followable) and rng.random() < P_CHAIN
    if chain:
        hop_pred = rng.choice(followable)
        others = [p for p in facts if p != hop_pred]
        preds = [hop_pred] + rng.sample(others, min(size - 2, len(others)))
        rng.shuffle(preds)
    else:
        preds = rng.sample(list(facts), min(size, len(facts)))
    triples = [[subject, p, facts[p]] for p in preds]
    if chain:
        hop = facts[hop_pred]
        options = [p for p, o in world.facts[hop].items() if o != subject]
        p = rng.choice(options)
        triples.append([hop, p, world.facts[hop][p]])
    return triples, chain


def _tripleset_key(tripleset: list[list[str]]) -> tuple:
    """Order-insensitive identity of a tripleset."""
    return tuple(sorted(tuple(t) for t in tripleset))


# --------------------------------------------------------------------------- realisation
@dataclass
class _Sentence:
    """A sentence under construction.

    ``subject`` is the entity in subject position (None for a fixed full-sentence
    phrasing); ``vps`` the verb phrases about it; ``relative`` renders the first verb
    phrase as a relative clause ("S, who VP1, VP2"); ``last_object`` is the object that
    ends the sentence (so a chain triple can attach "..., which ..."); ``tail`` is such
    an attached clause, after which the sentence is complete.
    """

    head: str
    subject: str | None = None
    vps: list[str] = field(default_factory=list)
    relative: bool = False
    last_object: str | None = None
    tail: str = ""

    def can_merge(self, subject: str) -> bool:
        return self.subject == subject and not self.tail and 1 <= len(self.vps) < 3

    def render(self) -> str:
        if self.subject is None:
            body = self.head
        elif self.relative:
            body = f"{self.head}, {self.vps[0]}, {_join_and(self.vps[1:])}"
        else:
            body = f"{self.head} {_join_and(self.vps)}"
        text = body + self.tail
        return text[0].upper() + text[1:] + "."


def _join_and(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _fill(template: str, subject: str, obj: str) -> str:
    return template.format(s=subject, o=obj, a_o=_with_article(obj))


def _ends_with_object(template: str) -> bool:
    return template.endswith("{o}") or template.endswith("{a_o}")


def _realise(tripleset: list[list[str]], world: _World, rng: random.Random) -> str:
    """One reference text for ``tripleset`` (see the module docstring)."""
    order = list(range(len(tripleset)))
    if len(order) > 1 and rng.random() < P_PERMUTE:
        rng.shuffle(order)

    def is_person(name: str) -> bool:
        return world.kind.get(name) in PERSON_TYPES

    def pronoun(name: str) -> str:
        if not is_person(name):
            return "it"
        return "he" if world.gender.get(name) == "m" else "she"

    done: list[_Sentence] = []
    cur: _Sentence | None = None
    for i in order:
        subj, pred, obj = tripleset[i]
        phrasings = PHRASINGS[pred]
        kind, template, _w = rng.choices(phrasings, weights=[p[2] for p in phrasings], k=1)[0]
        last_obj = obj if _ends_with_object(template) else None

        if kind == "s":
            # A full-sentence phrasing always starts a sentence of its own (it can
            # still take a "..., which ..." tail when it ends with its object).
            if cur is not None:
                done.append(cur)
            cur = _Sentence(head=_fill(template, subj, obj), last_object=last_obj)
            continue

        vp = _fill(template, subj, obj)
        if cur is not None and cur.can_merge(subj):
            how = pick_weighted(rng, AGGREGATION_WEIGHTS)
            # A relative clause needs a named head: "Kelford, which ..." but never "It, which ...".
            if how == "relative" and len(cur.vps) == 1 and not cur.relative and cur.head == subj:
                cur.vps[0] = ("who " if is_person(subj) else "which ") + cur.vps[0]
                cur.relative = True
                cur.vps.append(vp)
                cur.last_object = last_obj
                continue
            if how != "pronoun":
                cur.vps.append(vp)
                cur.last_object = last_obj
                continue
            done.append(cur)
            cur = _Sentence(head=pronoun(subj), subject=subj, vps=[vp], last_object=last_obj)
            continue
        if cur is not None and cur.last_object == subj and not cur.tail \
                and rng.random() < P_CHAIN_RELATIVE:
            # Chain: "X was born in Kelford, which is in Draland."
            cur.tail = (", who " if is_person(subj) else ", which ") + vp
            cur.last_object = last_obj
            continue
        if cur is not None:
            done.append(cur)
        same_subject = cur is not None and cur.subject == subj
        head = pronoun(subj) if same_subject and rng.random() < P_PRONOUN else subj
        cur = _Sentence(head=head, subject=subj, vps=[vp], last_object=last_obj)
    if cur is not None:
        done.append(cur)
    return " ".join(s.render() for s in done)


# --------------------------------------------------------------------------- public API
_MAX_DUPLICATE_MISSES = 200
def _generate(n_records: int, world_seed: int, sample_seed: int, accept=None) -> list[dict]:
    world = _build_world(world_seed)
    rng = random.Random(sample_seed)
    records: list[dict] = []
    seen: set[tuple] = set()
    misses = 0  # consecutive duplicates drawn
    while len(records) < n_records:
        tripleset, extended = _sample_tripleset(world, rng)
        key = _tripleset_key(tripleset)
        if accept is not None and not accept(key):
            continue
        # Triplesets are unique within a call, as long as new ones are easy to find;
        # near the size of the space (tens of thousands) duplicates are let through
        # rather than searching for ever.
        if key in seen:
            if misses < _MAX_DUPLICATE_MISSES:
                misses += 1
                continue
            # Saturated: misses stays at the limit, so duplicates pass until a new
            # tripleset turns up again.
        else:
            misses = 0
            seen.add(key)
        n_refs = pick_weighted(rng, N_ANNOTATIONS_WEIGHTS)
        annotations = [{"source": SOURCE, "text": _realise(tripleset, world, rng)}
                       for _ in range(n_refs)]
        records.append({"tripleset": tripleset, "subtree_was_extended": extended,
                        "annotations": annotations})
    return records


def generate_records(n_records: int, seed: int) -> list[dict]:
    """``n_records`` twin records in the DART release schema, a pure function of ``seed``.

    The world (entities and facts) and the sampling both derive from ``seed``;
    triplesets are unique within the result.
    """
    if n_records < 0:
        raise ValueError(f"n_records must be >= 0, got {n_records}")
    return _generate(n_records, seed, stable_seed("dart-twin-records", seed))


def _split_of(key: tuple) -> str:
    """The split a tripleset belongs to, by a stable hash of its (order-free) content.

    Partitioning the space of triplesets makes the splits disjoint whatever their
    sizes: an evaluation tripleset can never equal a training tripleset, however
    many training records are drawn.
    """
    return split_of_hash(stable_seed("dart-twin-split", repr(key)))


def generate_split(split: str, n_records: int, seed: int) -> list[dict]:
    """Twin records of one split ("train", "validation" or "test").

    All splits share the world of ``seed`` (the same entities recur, as in DART),
    are sampled with a seed derived from ``(seed, split)``, and never share a
    tripleset: a sampled tripleset that belongs to another split is drawn again.
    """
    check_request(split, n_records, "n_records")
    return _generate(n_records, seed, stable_seed("dart-twin-split-sample", seed, split),
                     accept=lambda key: _split_of(key) == split)


def _main() -> None:  # pragma: no cover - a manual look at the data
    import json

    for record in generate_split("train", 3, 0):
        print(json.dumps(record, indent=1))


if __name__ == "__main__":  # pragma: no cover
    _main()

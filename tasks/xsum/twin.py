"""Embedded synthetic twin of XSum (extreme summarisation).

Records have the exact schema of the hub's ``EdinburghNLP/xsum``::

    {"document": "sentence\\nsentence\\n...", "summary": "One sentence.", "id": "31456782"}

so the twin runs through the same loader code (:mod:`harness_tasks.xsum.records`)
as the real data.

How the data is made
--------------------
* A small *world* is generated from the seed: made-up towns in regions, firms with
  an industry, football clubs, people (first and last names from small pools).
* A document reports one **key event** of one of ten kinds (a firm closes a factory,
  an arrest, a football result, an appointment, funding for a project, a fire, a
  strike, a research finding, a cancelled event, a housing plan). The event is told
  in news style — a lead sentence, two detail sentences, a quote and two context
  sentences — among many **background sentences** about the place, the season,
  unrelated people and organisations (distractors that name other firms, clubs and
  towns). Documents are 230-310 words (260-360 tokens with a 1500-token vocabulary),
  as long as the XSum-like benchmark needs; the event's sentences all lie within the
  first 200 words, so a source cut at 256 tokens still holds the event.
* The summary is one sentence that **paraphrases** the key event: each kind has
  six summary templates weighted 0.25 down to 0.1, most with a synonym slot or
  two (close/shut, factory/plant/site, beat/defeated, ...), and the templates
  mention different details (the town, the number of jobs, the reason, ...). So an
  input has several valid summaries of different wording and content — clearly more
  varied than the DART twin (three phrasings per predicate) but far from the open
  choice of a dialogue response. Everything a summary says is in the document.
* The vocabulary stays at a few hundred words plus the made-up names, so a small
  encoder-decoder trained from scratch learns to find and restate the event.

Every random choice uses ``random.Random`` instances seeded through a stable hash;
the global ``random`` state is never used, so records depend on the seed only.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Callable

from harness.datasets.twins import NameMaker, check_request, pick_weighted, sample_distinct, split_of_hash, stable_seed

# --------------------------------------------------------------------------- vocabulary
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "br", "dr", "gr", "st", "th", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou")
_CODAS = ("n", "r", "l", "s", "m", "th", "nd", "rk", "ck")
_TOWN_SUFFIX = ("ford", "ton", "bury", "field", "worth", "ham", "by", "wick")
_REGION_SUFFIX = ("shire", "shire", " Valley", " Coast")
_FIRM_SUFFIX = ("Group", "Holdings", "Industries", "Systems", "Foods", "Motors")
_MASCOTS = ("United", "Rovers", "Athletic", "Town", "City", "Wanderers")
_INDUSTRIES = ("engineering", "food", "packaging", "chemicals", "textiles", "electronics", "furniture", "steel")
_PRODUCTS = {"engineering": "machine parts", "food": "ready meals", "packaging": "cardboard boxes",
             "chemicals": "cleaning products", "textiles": "carpets", "electronics": "circuit boards",
             "furniture": "kitchen units", "steel": "steel beams"}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_LANDMARKS = ("castle", "market hall", "harbour", "railway museum", "old bridge", "cathedral", "town park")
_SECTORS = ("farming", "tourism", "manufacturing", "retail", "fishing")
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                 9: "nine", 10: "ten"}

# Probability of each summary template of an event kind, in the order they are listed:
# one dominant phrasing and a long tail, as human summaries have.
SUMMARY_WEIGHTS = (0.25, 0.2, 0.15, 0.15, 0.15, 0.1)

# Synonym slots of summary templates: "{~close}" picks one option by weight.
SYNONYMS: dict[str, tuple[tuple[str, float], ...]] = {
    "close": (("close", 0.6), ("shut", 0.4)),
    "factory": (("factory", 0.5), ("plant", 0.3), ("site", 0.2)),
    "closure": (("closure", 0.7), ("shutdown", 0.3)),
    "arrested": (("arrested", 0.7), ("detained", 0.3)),
    "after": (("after", 0.6), ("following", 0.4)),
    "beat": (("beat", 0.6), ("defeated", 0.4)),
    "win": (("win", 0.7), ("victory", 0.3)),
    "appointed": (("appointed", 0.6), ("named", 0.4)),
    "new": (("new", 0.7), ("next", 0.3)),
    "approved": (("approved", 0.6), ("backed", 0.4)),
    "funding": (("funding", 0.7), ("money", 0.3)),
    "destroyed": (("destroyed", 0.6), ("gutted", 0.4)),
    "evacuated": (("evacuated", 0.7), ("moved out", 0.3)),
    "strike": (("strike", 0.6), ("walk out", 0.4)),
    "dispute": (("dispute", 0.6), ("row", 0.4)),
    "researchers": (("researchers", 0.6), ("scientists", 0.4)),
    "linked": (("linked", 0.7), ("connected", 0.3)),
    "cancelled": (("cancelled", 0.7), ("called off", 0.3)),
    "homes": (("homes", 0.6), ("houses", 0.4)),
}


_SLOT = re.compile(r"\{(~?)(\w+)\}")


def fill(template: str, facts: dict[str, str], rng: random.Random) -> str:
    """``template`` with ``{fact}`` slots filled from ``facts`` and ``{~word}`` slots drawn from :data:`SYNONYMS`."""
    def slot(match: re.Match) -> str:
        synonym, name = match.groups()
        return pick_weighted(rng, dict(SYNONYMS[name])) if synonym else facts[name]

    text = _SLOT.sub(slot, template)
    return text[0].upper() + text[1:]


# --------------------------------------------------------------------------- world
@dataclass
class World:
    """The entities of one seed: towns (with region and population), firms, clubs, name pools."""

    towns: list[str] = field(default_factory=list)
    region_of: dict[str, str] = field(default_factory=dict)
    population: dict[str, str] = field(default_factory=dict)
    landmark: dict[str, str] = field(default_factory=dict)
    regions: list[str] = field(default_factory=list)
    firms: list[str] = field(default_factory=list)
    industry: dict[str, str] = field(default_factory=dict)
    founded: dict[str, int] = field(default_factory=dict)
    clubs: list[str] = field(default_factory=list)
    first_names: list[str] = field(default_factory=list)
    last_names: list[str] = field(default_factory=list)

    def person(self, rng: random.Random) -> str:
        return f"{rng.choice(self.first_names)} {rng.choice(self.last_names)}"


class _Namer(NameMaker):
    """XSum's made-up names: words of its syllable inventory, unique among the names so far."""

    def __init__(self, rng: random.Random):
        super().__init__(rng, _ONSETS, _VOWELS, _CODAS)

    def word(self, syllables: int, suffix: str = "") -> str:
        """A new word of ``syllables`` syllables and ``suffix`` (a coda instead when there is none;
        a suffix that starts with a space is a second word)."""
        def draw() -> str:
            stem = self.syllables(syllables, coda=not suffix)
            return (stem + suffix).capitalize() if not suffix.startswith(" ") else stem.capitalize() + suffix
        return self.unique(draw)


WORLD_SIZES = {"region": 6, "town": 36, "firm": 24, "club": 16, "first": 20, "last": 36}


def build_world(seed: int) -> World:
    """The world of ``seed`` (a pure function of the seed)."""
    rng = random.Random(stable_seed("xsum-twin-world", seed))
    namer = _Namer(rng)
    world = World()
    world.regions = [namer.word(rng.choice((1, 2)), rng.choice(_REGION_SUFFIX)) for _ in range(WORLD_SIZES["region"])]
    for _ in range(WORLD_SIZES["town"]):
        town = namer.word(1, rng.choice(_TOWN_SUFFIX))
        world.towns.append(town)
        world.region_of[town] = rng.choice(world.regions)
        world.population[town] = f"{rng.randint(8, 95) * 1000:,}"
        world.landmark[town] = rng.choice(_LANDMARKS)
    for _ in range(WORLD_SIZES["firm"]):
        firm = f"{namer.word(2)} {rng.choice(_FIRM_SUFFIX)}"
        world.firms.append(firm)
        world.industry[firm] = rng.choice(_INDUSTRIES)
        world.founded[firm] = rng.randint(1900, 1995)
    world.clubs = [f"{town} {rng.choice(_MASCOTS)}" for town in rng.sample(world.towns, WORLD_SIZES["club"])]
    world.first_names = [namer.word(rng.choice((1, 2))) for _ in range(WORLD_SIZES["first"])]
    world.last_names = [namer.word(2) for _ in range(WORLD_SIZES["last"])]
    return world


# --------------------------------------------------------------------------- events
@dataclass(frozen=True)
class EventKind:
    """One kind of key event.

    ``facts`` draws the event's facts (strings) from the world; the document tells the
    event with one of ``leads`` (the lead sentence), all ``details`` and one of
    ``quotes``; ``context`` sentences are background about the event's entities; the
    summary is one of ``summaries``, drawn with :data:`SUMMARY_WEIGHTS` (the first is
    the commonest). ``key`` names the facts that identify an event (splits are
    disjoint on them).
    """

    name: str
    facts: Callable[[World, random.Random], dict[str, str]]
    key: tuple[str, ...]
    leads: tuple[str, ...]
    details: tuple[str, ...]
    quotes: tuple[str, ...]
    context: tuple[str, ...]
    summaries: tuple[str, ...]


def _closure_facts(world: World, rng: random.Random) -> dict[str, str]:
    firm = rng.choice(world.firms)
    industry = world.industry[firm]
    return {"firm": firm, "town": rng.choice(world.towns), "industry": industry, "products": _PRODUCTS[industry],
            "jobs": str(rng.randint(4, 60) * 10), "founded": str(world.founded[firm]), "boss": world.person(rng),
            "reason": rng.choice(("falling demand", "rising energy costs", "a review of its business",
                                  "the loss of a major contract"))}


def _arrest_facts(world: World, rng: random.Random) -> dict[str, str]:
    town = rng.choice(world.towns)
    return {"town": town, "police": f"{world.region_of[town]} Police", "age": str(rng.randint(18, 60)),
            "gender": rng.choice(("man", "woman")),
            "crime": rng.choice(("an armed robbery", "a burglary", "an assault", "a break-in")),
            "place": rng.choice(("shop", "petrol station", "bank", "pub", "post office")),
            "weekday": rng.choice(_WEEKDAYS), "officer": world.person(rng)}


def _match_facts(world: World, rng: random.Random) -> dict[str, str]:
    home, away = rng.sample(world.clubs, 2)
    winner_goals = rng.randint(1, 4)
    loser_goals = rng.randint(0, winner_goals - 1)
    scorer_goals = rng.randint(1, min(2, winner_goals))
    return {"winner": home, "loser": away, "score": f"{winner_goals}-{loser_goals}", "scorer": world.person(rng),
            "times": {1: "once", 2: "twice"}[scorer_goals], "goal": {1: "goal", 2: "double"}[scorer_goals],
            "round": rng.choice(("quarter-finals", "semi-finals", "final")),
            "cup": f"{rng.choice(world.regions)} Cup", "minute": str(rng.randint(5, 85)),
            "manager": world.person(rng)}


def _appointment_facts(world: World, rng: random.Random) -> dict[str, str]:
    if rng.random() < 0.5:
        org, role = rng.choice(world.firms), rng.choice(("chief executive", "chairman", "finance director"))
    else:
        org, role = rng.choice(world.clubs), rng.choice(("manager", "head coach", "chairman"))
    return {"org": org, "role": role, "person": world.person(rng), "old": world.person(rng),
            "years": _NUMBER_WORDS[rng.randint(2, 10)],
            "previous": rng.choice([o for o in world.firms + world.clubs if o != org])}


def _funding_facts(world: World, rng: random.Random) -> dict[str, str]:
    town = rng.choice(world.towns)
    return {"town": town, "region": world.region_of[town], "amount": str(rng.randint(2, 40)),
            "project": rng.choice(("bridge", "library", "swimming pool", "health centre", "railway station",
                                   "sports centre")),
            "funder": rng.choice(("the government", f"{world.region_of[town]} Council", "the Lottery Fund")),
            "year": str(rng.randint(2025, 2029))}


def _fire_facts(world: World, rng: random.Random) -> dict[str, str]:
    return {"town": rng.choice(world.towns),
            "building": rng.choice(("warehouse", "hotel", "block of flats", "restaurant", "school", "farm building")),
            "engines": _NUMBER_WORDS[rng.randint(3, 10)], "people": str(rng.randint(2, 30) * 5),
            "weekday": rng.choice(_WEEKDAYS), "officer": world.person(rng)}


def _strike_facts(world: World, rng: random.Random) -> dict[str, str]:
    return {"workers": rng.choice(("nurses", "teachers", "bus drivers", "rail staff", "refuse collectors")),
            "region": rng.choice(world.regions), "days": _NUMBER_WORDS[rng.randint(2, 7)],
            "issue": rng.choice(("pay", "working hours", "job cuts", "pensions")),
            "leader": world.person(rng), "month": rng.choice(_MONTHS)}


def _study_facts(world: World, rng: random.Random) -> dict[str, str]:
    return {"university": f"University of {rng.choice(world.towns)}",
            "cause": rng.choice(("regular exercise", "eating fruit", "poor sleep", "screen time", "drinking coffee",
                                 "living near a park")),
            "effect": rng.choice(("better memory", "heart disease", "lower stress", "weight gain", "back pain",
                                  "longer life")),
            "people": f"{rng.randint(2, 60) * 100:,}", "author": world.person(rng), "years": _NUMBER_WORDS[rng.randint(2, 10)]}


def _cancel_facts(world: World, rng: random.Random) -> dict[str, str]:
    town = rng.choice(world.towns)
    return {"town": town, "event": f"{town} {rng.choice(('music festival', 'food festival', 'marathon', 'summer show', 'carnival'))}",
            "reason": rng.choice(("heavy rain", "strong winds", "safety concerns", "a lack of funding")),
            "weekday": rng.choice(_WEEKDAYS), "organiser": world.person(rng),
            "visitors": f"{rng.randint(2, 40) * 1000:,}"}


def _housing_facts(world: World, rng: random.Random) -> dict[str, str]:
    town = rng.choice(world.towns)
    return {"town": town, "council": f"{world.region_of[town]} Council", "homes": str(rng.randint(5, 80) * 10),
            "site": rng.choice(("farmland", "the old hospital site", "a former factory site", "playing fields")),
            "objections": str(rng.randint(10, 300)), "councillor": world.person(rng)}


EVENTS: tuple[EventKind, ...] = (
    EventKind(
        "closure", _closure_facts, ("firm", "town", "jobs"),
        leads=("{firm} has confirmed that its factory in {town} will close by the end of the year.",
               "The {industry} firm {firm} said it would close its factory in {town} later this year."),
        details=("About {jobs} people are employed at the site, which makes {products}.",
                 "The company blamed {reason} for the decision."),
        quotes=('"This was not an easy decision and we will support our staff," said chief executive {boss}.',
                "Chief executive {boss} said the firm would try to find new roles for some of the workers."),
        context=("{firm} was founded in {founded} and is one of the largest {industry} firms in the country.",
                 "The {town} factory opened in the 1970s."),
        summaries=("{firm} is to {~close} its {town} {~factory}, with the loss of {jobs} jobs.",
                   "{jobs} jobs are to go after {firm} announced the {~closure} of its {~factory} in {town}.",
                   "The {industry} firm {firm} is to {~close} its {~factory} in {town}.",
                   "{firm} has confirmed plans to {~close} its {town} {~factory}, blaming {reason}.",
                   "A {~factory} in {town} run by {firm} is to {~close}, putting {jobs} jobs at risk.",
                   "Up to {jobs} workers could lose their jobs after {firm} said it would {~close} its {town} site.")),
    EventKind(
        "arrest", _arrest_facts, ("town", "crime", "place", "age", "gender"),
        leads=("Officers were called to a {place} in {town} on {weekday} evening after reports of {crime}.",
               "Police were called to {crime} at a {place} in {town} on {weekday}."),
        details=("{police} said a {age}-year-old {gender} was arrested at the scene and remains in custody.",
                 "A member of staff was treated for minor injuries."),
        quotes=('"We would like to thank the public for their help," said Detective Inspector {officer}.',
                "Detective Inspector {officer} asked anyone with information to contact {police}."),
        context=("The {place} reopened the following morning.",
                 "Police patrols in the area have been increased."),
        summaries=("A {age}-year-old {gender} has been {~arrested} {~after} {crime} at a {place} in {town}.",
                   "{police} have {~arrested} a {gender} {~after} {crime} in {town}.",
                   "A {gender} has been {~arrested} over {crime} at a {town} {place}.",
                   "Police investigating {crime} at a {place} in {town} have {~arrested} a {age}-year-old {gender}.",
                   "A {gender} is being held by police {~after} {crime} in {town} on {weekday}.",
                   "A {gender} is in custody {~after} {crime} at a {place} in {town}.")),
    EventKind(
        "match", _match_facts, ("winner", "loser", "score", "round"),
        leads=("{winner} were the stronger side from the start of their {cup} tie against {loser}.",
               "{winner} hosted {loser} in the {cup} on a cold evening."),
        details=("{scorer} scored {times} for {winner}, opening the scoring after {minute} minutes.",
                 "The match finished {score} and {winner} go through to the {round}."),
        quotes=('"I am proud of the players," said {winner} manager {manager}.',
                "{winner} manager {manager} praised the effort of his squad."),
        context=("{loser} had won their previous three matches.",
                 "A crowd of several thousand watched the game."),
        summaries=("{winner} {~beat} {loser} {score} to reach the {round} of the {cup}.",
                   "{scorer} scored {times} as {winner} {~beat} {loser} in the {cup}.",
                   "{winner} moved into the {round} of the {cup} with a {score} {~win} over {loser}.",
                   "{loser} are out of the {cup} after a {score} defeat by {winner}.",
                   "A {goal} from {scorer} helped {winner} to a {score} {~win} against {loser}.",
                   "{winner} are through to the {round} of the {cup} after beating {loser}.")),
    EventKind(
        "appointment", _appointment_facts, ("org", "role", "person"),
        leads=("{org} has confirmed that {person} will take over as {role} next month.",
               "{person} will become the {role} of {org}, the board said on Monday."),
        details=("{person} joins from {previous}.",
                 "{old} left the post after {years} years in the role."),
        quotes=('"I am delighted to be joining such a strong team," said {person}.',
                "{person} said the new role was a great opportunity."),
        context=("{org} has had a difficult year.",
                 "The search for a replacement began in the spring."),
        summaries=("{person} has been {~appointed} as the {~new} {role} of {org}.",
                   "{org} has {~appointed} {person} as its {role}, replacing {old}.",
                   "{person} is to succeed {old} as {role} of {org}.",
                   "{org} has named {person} as its {~new} {role} after {old} left the post.",
                   "The {~new} {role} of {org} will be {person}, who joins from {previous}.",
                   "{old} is to be replaced as {role} of {org} by {person}.")),
    EventKind(
        "funding", _funding_facts, ("town", "project", "funder", "amount"),
        leads=("A new {project} is to be built in {town} after {funder} agreed to pay for it.",
               "{funder} has agreed to pay for a new {project} in {town}."),
        details=("The project will cost about {amount} million pounds.",
                 "Work is expected to be finished by {year}."),
        quotes=('"This is great news for the whole of {region}," said a spokesperson.',
                "Local leaders said the {project} would make a real difference to {town}."),
        context=("The old {project} in {town} was closed several years ago.",
                 "Campaigners have called for a new {project} for a long time."),
        summaries=("A new {project} in {town} is to receive {amount} million pounds of {~funding} from {funder}.",
                   "{funder} has {~approved} {amount} million pounds for a new {project} in {town}.",
                   "Plans for a new {project} in {town} have been {~approved} by {funder}.",
                   "{town} is to get a new {project} after {funder} agreed to pay for it.",
                   "{~funding} of {amount} million pounds has been {~approved} for a {project} in {town}.",
                   "Work on a new {project} in {town} will start soon, after {funder} agreed to pay.")),
    EventKind(
        "fire", _fire_facts, ("town", "building", "people"),
        leads=("Fire crews were called to a {building} in {town} early on {weekday} morning.",
               "A large fire broke out at a {building} in {town} on {weekday}."),
        details=("About {people} people had to leave the area while {engines} fire engines tackled the flames.",
                 "The cause of the fire is not yet known."),
        quotes=('"Crews worked through the night in difficult conditions," said fire officer {officer}.',
                "Fire officer {officer} said nobody had been seriously hurt."),
        context=("Nearby roads were closed for several hours.",
                 "The {building} had been empty for some time."),
        summaries=("A fire has {~destroyed} a {building} in {town}.",
                   "{people} people were {~evacuated} {~after} a fire at a {building} in {town}.",
                   "Firefighters have been tackling a large fire at a {building} in {town}.",
                   "A {building} in {town} has been badly damaged by fire, with {people} people {~evacuated}.",
                   "An investigation is under way {~after} a fire at a {town} {building}.",
                   "{engines} fire engines were sent to a fire at a {building} in {town}.")),
    EventKind(
        "strike", _strike_facts, ("workers", "region", "issue", "days", "month"),
        leads=("{workers} in {region} have voted to take industrial action over {issue}.",
               "Union members working as {workers} in {region} backed action over {issue} in a ballot."),
        details=("The action will last for {days} days and is due to begin in {month}.",
                 "Talks between the union and employers broke down last week."),
        quotes=('"Nobody wants to take this step," said union leader {leader}.',
                "Union leader {leader} said the members had been left with no choice."),
        context=("Employers said they had made a fair offer.",
                 "The last action of this kind in {region} was several years ago."),
        summaries=("{workers} in {region} are to {~strike} for {days} days in a {~dispute} over {issue}.",
                   "A {days}-day strike by {workers} in {region} will go ahead after talks over {issue} failed.",
                   "{workers} in {region} have voted to {~strike} over {issue}.",
                   "{workers} across {region} will {~strike} in {month} in a {~dispute} over {issue}.",
                   "Union members working as {workers} in {region} will {~strike} over {issue}.",
                   "Services in {region} face disruption as {workers} prepare to {~strike} over {issue}.")),
    EventKind(
        "study", _study_facts, ("university", "cause", "effect", "people"),
        leads=("A team at the {university} followed {people} people for {years} years.",
               "The {university} study looked at the lives of {people} people over {years} years."),
        details=("It found that people with more {cause} were more likely to report {effect}.",
                 "The results have been published in a medical journal."),
        quotes=('"The link was stronger than we expected," said lead author {author}.',
                "Lead author {author} said more work was needed to explain the link."),
        context=("Earlier studies had produced mixed results.",
                 "The work was paid for by a health charity."),
        summaries=("{cause} may be {~linked} to {effect}, according to {~researchers} at the {university}.",
                   "{~researchers} at the {university} say {cause} is {~linked} to {effect}.",
                   "{cause} is {~linked} to {effect}, a study of {people} people has found.",
                   "A link between {cause} and {effect} has been found by {~researchers} at the {university}.",
                   "People with more {cause} are more likely to report {effect}, a study suggests.",
                   "A {years}-year study has {~linked} {cause} to {effect}.")),
    EventKind(
        "cancel", _cancel_facts, ("event", "reason", "visitors"),
        leads=("Organisers of the {event} said on {weekday} that this year's event would not go ahead.",
               "This year's {event} will not take place, its organisers have said."),
        details=("They said the decision was made because of {reason}.",
                 "The event usually attracts about {visitors} visitors."),
        quotes=('"We are very sorry to disappoint everyone," said organiser {organiser}.',
                "Organiser {organiser} said tickets would be refunded."),
        context=("The first {event} was held more than twenty years ago.",
                 "Local traders rely on the visitors the event brings."),
        summaries=("The {event} has been {~cancelled} because of {reason}.",
                   "Organisers have {~cancelled} this year's {event} due to {reason}.",
                   "This year's {event} will not go ahead because of {reason}.",
                   "{reason} has led to the {event} being {~cancelled}.",
                   "The {event}, which attracts about {visitors} visitors, has been {~cancelled}.",
                   "Thousands of visitors will miss the {event} after it was {~cancelled}.")),
    EventKind(
        "housing", _housing_facts, ("town", "homes", "site"),
        leads=("Councillors in {town} voted in favour of plans to build on {site} at a meeting on Wednesday.",
               "{council} has given permission for new housing on {site} in {town}."),
        details=("The scheme includes {homes} new homes and a small shop.",
                 "{council} received {objections} objections from local residents."),
        quotes=('"The town badly needs more housing," said councillor {councillor}.',
                "Councillor {councillor} said the homes would help young families."),
        context=("Residents have raised concerns about traffic in the area.",
                 "The site has been empty for several years."),
        summaries=("Plans for {homes} {~homes} in {town} have been {~approved} by councillors.",
                   "{council} has {~approved} {homes} {~homes} on {site} in {town}.",
                   "Councillors have {~approved} plans to build {homes} {~homes} on {site} in {town}, "
                    "despite objections.",
                   "Up to {homes} {~homes} could be built on {site} in {town} after plans were {~approved}.",
                   "A scheme to build {homes} {~homes} in {town} has been given the go-ahead.",
                   "{homes} {~homes} will be built in {town} despite {objections} objections from residents.")),
)
EVENTS_BY_NAME = {e.name: e for e in EVENTS}

# Background sentences, with slots for the event's town or region where they have them.
BACKGROUND: tuple[str, ...] = (
    "{town} is a market town in {region} with a population of about {population}.",
    "The town is best known for its {landmark}.",
    "Many people in {town} work in {sector}.",
    "The {landmark} attracts thousands of visitors every summer.",
    "The weather in {region} has been unusually {weather} this month.",
    "Traffic in the town centre was busy throughout the day.",
    "Local elections are due to be held in {region} in {month}.",
    "A report on the local economy is expected to be published later this year.",
    "Further information is available on the council website.",
    "Local newspapers have covered the story in detail.",
    "Residents were told about the news at a public meeting.",
    "The issue was raised in parliament last year.",
    "Figures released in {month} showed a rise in visitor numbers in {region}.",
    "Officials said they were keeping the situation under review.",
    "The area has seen a number of changes in recent years.",
    "A new bus route between {town} and {other_town} started in {month}.",
    "{other_firm} opened a new office in {other_town} last year.",
    "{other_person}, who has lived in {town} for {years} years, said the town had changed a lot.",
    "{other_club} play their home games on the edge of {other_town}.",
    "The nearest hospital is in {other_town}, about {miles} miles away.",
    "House prices in {region} have risen steadily in recent years.",
    "Shops in the town centre have reported a difficult year.",
    "The council is also consulting residents on new parking rules.",
    "Road works on the main road into {town} are due to finish in {month}.",
    "A charity walk in aid of the local hospice took place at the weekend.",
    "{region} has one of the oldest populations in the country.",
    "Schools in the area return from the holidays next week.",
    "The {landmark} was repaired last year at a cost of several thousand pounds.",
    "Volunteers have been planting trees along the river.",
    "The local radio station asked listeners for their views.",
    "A farmers market is held in {town} on the first Saturday of every month.",
    "The railway line through {town} was opened more than a century ago.",
    "Plans for a new cycle path to {other_town} are still being discussed.",
    "Visitor numbers at the {landmark} fell during the winter.",
    "{other_person} runs a cafe near the {landmark}.",
    "Several roads in {region} were flooded earlier in the year.",
    "The population of {town} has grown by almost a tenth since the last census.",
    "A new primary school opened in {other_town} in {month}.",
    "The annual report of {other_firm} is due next month.",
    "Bus services in {region} are run by several small companies.",
    "Many young people leave {region} to study in the big cities.",
    "The town hall was built in the nineteenth century.",
)
_WEATHER = ("wet", "dry", "warm", "cold", "windy")

DOCUMENT_WORDS = (230, 300)   # target length range of a document, in words
LEAD_POSITION = (0, 0)        # background sentences before the lead
P_INTERLEAVE = 0.2           # a background sentence after each later event sentence
EVENT_WITHIN_WORDS = 200      # the event's sentences all end within this many words


def _town_region(facts: dict[str, str], world: World, rng: random.Random) -> tuple[str, str]:
    town = facts.get("town") or rng.choice(world.towns)
    region = facts.get("region") or world.region_of.get(town) or rng.choice(world.regions)
    return town, region


def _background(world: World, facts: dict[str, str], rng: random.Random) -> list[str]:
    """All background sentences in a random order, filled for this document."""
    town, region = _town_region(facts, world, rng)
    slots = {"town": town, "region": region, "population": world.population.get(town, "40,000"),
             "landmark": world.landmark.get(town, "castle"), "sector": rng.choice(_SECTORS),
             "weather": rng.choice(_WEATHER), "month": rng.choice(_MONTHS),
             "other_town": rng.choice([t for t in world.towns if t != town]),
             "other_firm": rng.choice([f for f in world.firms if f not in facts.values()]),
             "other_club": rng.choice([c for c in world.clubs if c not in facts.values()]),
             "other_person": world.person(rng), "years": _NUMBER_WORDS[rng.randint(2, 10)],
             "miles": str(rng.randint(5, 40))}
    sentences = [fill(t, slots, rng) for t in BACKGROUND]
    rng.shuffle(sentences)
    return sentences


def _words(sentences: list[str]) -> int:
    return sum(len(s.split()) for s in sentences)


def compose_document(kind: EventKind, facts: dict[str, str], world: World, rng: random.Random) -> str:
    """The article: background, the lead, details, the quote and the event's context with some
    background between them (all within :data:`EVENT_WITHIN_WORDS` words), then more background."""
    event = [fill(rng.choice(kind.leads), facts, rng)]
    event += [fill(t, facts, rng) for t in kind.details]
    event.append(fill(rng.choice(kind.quotes), facts, rng))
    context = [fill(t, facts, rng) for t in kind.context]
    background = _background(world, facts, rng)
    target = rng.randint(*DOCUMENT_WORDS)
    n_before = rng.randint(*LEAD_POSITION)
    before, background = background[:n_before], background[n_before:]
    # Lead, then details and quote interleaved with the event's own context and background.
    rest = event[1:] + context
    body: list[str] = []
    for sentence in rest:
        body.append(sentence)
        if background and rng.random() < P_INTERLEAVE:
            body.append(background.pop())
    sentences = before + event[:1] + body
    while background and _words(sentences) < target:
        sentences.append(background.pop())
    return "\n".join(sentences)


def summarise(kind: EventKind, facts: dict[str, str], rng: random.Random) -> str:
    """One summary of the event: a template by weight, with its synonym slots drawn."""
    template = pick_weighted(rng, dict(zip(kind.summaries, SUMMARY_WEIGHTS)))
    return fill(template, facts, rng)


# --------------------------------------------------------------------------- public API
def event_key(kind: EventKind, facts: dict[str, str]) -> tuple:
    """The identity of an event: its kind and its key facts."""
    return (kind.name, *(facts[k] for k in kind.key))


def split_of(key: tuple) -> str:
    """The split an event belongs to, by a stable hash of its key (splits never share an event)."""
    return split_of_hash(stable_seed("xsum-twin-split", repr(key)))


@dataclass(frozen=True)
class TwinEvent:
    """A sampled key event: its kind and facts."""

    kind: str
    facts: tuple[tuple[str, str], ...]

    @property
    def fact_dict(self) -> dict[str, str]:
        return dict(self.facts)


def sample_events(split: str, n: int, seed: int) -> list[TwinEvent]:
    """``n`` distinct events of ``split`` for ``seed``; kinds equally likely."""
    check_request(split, n)
    world = build_world(seed)
    rng = random.Random(stable_seed("xsum-twin-events", seed, split))

    def draw() -> tuple[tuple, TwinEvent]:
        kind = rng.choice(EVENTS)
        facts = kind.facts(world, rng)
        return event_key(kind, facts), TwinEvent(kind.name, tuple(sorted(facts.items())))

    return sample_distinct(n, draw, lambda key: split_of(key) == split, f"distinct {split} events of the XSum twin")


def sample_summary(event: TwinEvent, rng: random.Random) -> str:
    """One valid summary of ``event`` (the twin's reference distribution)."""
    return summarise(EVENTS_BY_NAME[event.kind], event.fact_dict, rng)


def _record_id(seed: int, split: str, index: int, used: set[str]) -> str:
    """An 8-digit id like XSum's (BBC article ids), unique within the split."""
    salt = 0
    while True:
        rid = str(10_000_000 + stable_seed("xsum-twin-id", seed, split, index, salt) % 90_000_000)
        if rid not in used:
            used.add(rid)
            return rid
        salt += 1


def generate_split(split: str, n_records: int, seed: int) -> list[dict]:
    """``n_records`` twin records of ``split`` in the hub schema, a pure function of ``seed``.

    Events are distinct within a split and never shared between splits; asking for
    more records extends the list without changing the first ones.
    """
    world = build_world(seed)
    rng = random.Random(stable_seed("xsum-twin-text", seed, split))
    records, used = [], set()
    for i, event in enumerate(sample_events(split, n_records, seed)):
        kind, facts = EVENTS_BY_NAME[event.kind], event.fact_dict
        document = compose_document(kind, facts, world, rng)
        records.append({"document": document, "summary": summarise(kind, facts, rng),
                        "id": _record_id(seed, split, i, used)})
    return records

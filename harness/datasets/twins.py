"""What every embedded twin uses: stable seeds, weighted picks, made-up names, split assignment.

A twin is a seeded generator of records in a real data set's schema. Its output must be a
pure function of the seed, the same in every process and on every machine: every random
choice goes through a ``random.Random`` seeded by :func:`stable_seed` (never the global
``random`` state, never the salted built-in ``hash``). Splits are kept disjoint by hashing
what identifies an input (a tripleset, an event, a sentence, a scenario) into
:data:`SPLIT_BUCKETS`, so that no evaluation input is ever a training input, whatever the
split sizes.
"""

from __future__ import annotations

import hashlib
import random
from typing import Callable, Hashable, Mapping, Sequence, TypeVar

from harness.task import SPLITS

T = TypeVar("T")

#: Share of an input space each split owns, in twentieths: validation and test 10% each.
SPLIT_BUCKETS = {"validation": range(0, 2), "test": range(2, 4), "train": range(4, 20)}

#: Consecutive rejected draws (a duplicate, or an input of another split) before a twin gives up.
MAX_MISSES = 10_000


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts`` (joined by their ``str``), the same in every process."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def pick_weighted(rng: random.Random, weights: Mapping[T, float]) -> T:
    """One key of ``weights``, drawn with probability proportional to its value."""
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def split_of_hash(value: int) -> str:
    """The split that owns a stable hash ``value`` (see :data:`SPLIT_BUCKETS`)."""
    bucket = value % 20
    return next(split for split, buckets in SPLIT_BUCKETS.items() if bucket in buckets)


def check_request(split: str, n: int, count: str = "n") -> None:
    """A twin is asked for a known split and a non-negative number ``count`` of records."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if n < 0:
        raise ValueError(f"{count} must be >= 0, got {n}")


def sample_distinct(n: int, draw: Callable[[], tuple[Hashable, T]], belongs: Callable[[Hashable], bool],
                    what: str) -> list[T]:
    """``n`` items from ``draw()`` (which returns ``(key, item)``) with new keys that ``belongs`` accepts.

    Raises ``ValueError`` naming ``what`` (e.g. "distinct test events of the XSum twin") after
    :data:`MAX_MISSES` rejected draws in a row: the space is too small for ``n``.
    """
    out: list[T] = []
    seen: set = set()
    misses = 0
    while len(out) < n:
        key, item = draw()
        if key in seen or not belongs(key):
            misses += 1
            if misses > MAX_MISSES:
                raise ValueError(f"cannot make {n} {what} (made {len(out)})")
            continue
        misses = 0
        seen.add(key)
        out.append(item)
    return out


class NameMaker:
    """Unique pronounceable made-up words from a syllable inventory (onset + vowel, then a coda)."""

    def __init__(self, rng: random.Random, onsets: Sequence[str], vowels: Sequence[str], codas: Sequence[str]):
        self.rng = rng
        self.onsets, self.vowels, self.codas = onsets, vowels, codas
        self.used: set[str] = set()

    def syllables(self, n: int, coda: bool = True) -> str:
        """``n`` consonant-vowel syllables, closed by a coda unless ``coda`` is false (not yet unique)."""
        word = "".join(self.rng.choice(self.onsets) + self.rng.choice(self.vowels) for _ in range(n))
        return word + self.rng.choice(self.codas) if coda else word

    def unique(self, draw: Callable[[], str | None]) -> str:
        """The first word ``draw()`` makes that is not used yet (``None`` is a rejected draw); it is now used."""
        while True:
            word = draw()
            if word is not None and word not in self.used:
                self.used.add(word)
                return word

"""Seeded, stratified draws of inputs: the data caps, and one release file divided into three splits.

A release file is often ordered by where its inputs come from (DART's test file: the table
sources first, then WebNLG, then E2E), so its first N inputs are one source, not a sample.
Every draw here takes inputs in one seeded order instead, :func:`stratified_order`, in which
each stratum (a task's :attr:`Example.stratum`, e.g. DART's ``webnlg``/``e2e``/``WikiSQL…``)
is spread evenly: any prefix of the order holds each stratum in proportion to its share of
the whole, give or take one input. Within a stratum inputs are ranked by a seeded hash of
the input, so the draw does not depend on the order of the file or of a dict.

An *input* is what a model reads: the examples sharing one ``source`` (a training split
holds one example per reference of an input); a draw keeps all of them or none, and keeps
the order of the file among the drawn ones.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

from harness.errors import HarnessError
from harness.task import SPLITS, Example

from .twins import stable_seed

T = TypeVar("T")

#: How the manifest names the stratum of inputs a task gives none.
NO_STRATUM = "none"


def stratified_order(strata: Mapping[Hashable, str | None], seed: int) -> list[Hashable]:
    """The inputs ``strata`` names (input → its stratum) in a seeded order that spreads every stratum evenly.

    Systematic stratified sampling: the r-th of a stratum's n inputs (ranked by a seeded hash)
    sits at (r + ½) / n along the order, so the first k inputs hold k·n/N ± 1 of each stratum.
    Ties between strata go to the stratum whose name sorts first.
    """
    by_stratum: dict[str, list[Hashable]] = {}
    for key, stratum in strata.items():
        by_stratum.setdefault(stratum or "", []).append(key)
    placed = []
    for stratum, keys in by_stratum.items():
        ranked = sorted(keys, key=lambda k: (stable_seed(seed, k), str(k)))
        placed += [((rank + 0.5) / len(ranked), stratum, key) for rank, key in enumerate(ranked)]
    placed.sort(key=lambda p: p[:2])
    return [key for _, _, key in placed]


def input_strata(examples: Iterable[Example]) -> dict[str, str | None]:
    """Each input (source) of ``examples`` → its stratum, in the order of the file."""
    strata: dict[str, str | None] = {}
    for e in examples:
        strata.setdefault(e.source, e.stratum)
    return strata


def draw_examples(examples: list[Example], seed: int, *, inputs: int | None = None,
                  rows: int | None = None) -> list[Example]:
    """The examples of the longest prefix of :func:`stratified_order` with at most ``inputs`` inputs and at most
    ``rows`` examples (None: no bound), in the order of the file; ``examples`` unchanged when neither binds."""
    strata = input_strata(examples)
    if (inputs is None or inputs >= len(strata)) and (rows is None or rows >= len(examples)):
        return examples
    rows_of: dict[str, int] = {}
    for e in examples:
        rows_of[e.source] = rows_of.get(e.source, 0) + 1
    kept, n_rows = set(), 0
    for source in stratified_order(strata, seed):
        if (inputs is not None and len(kept) >= inputs) or (rows is not None and n_rows + rows_of[source] > rows):
            break
        kept.add(source)
        n_rows += rows_of[source]
    return [e for e in examples if e.source in kept]


def describe_draw(examples: Sequence[Example]) -> dict:
    """What the manifest records of a split's examples: how many inputs and examples, inputs per stratum, and a
    sha256 of the example ids in order (two runs drew the same examples iff their hashes agree)."""
    strata = input_strata(examples)
    per_stratum: dict[str, int] = {}
    for stratum in strata.values():
        per_stratum[stratum or NO_STRATUM] = per_stratum.get(stratum or NO_STRATUM, 0) + 1
    ids = hashlib.sha256("\n".join(e.id for e in examples).encode()).hexdigest()
    return {"inputs": len(strata), "examples": len(examples),
            "per_stratum": dict(sorted(per_stratum.items())), "ids_sha256": ids}


def split_records(records: Sequence[T], input_of: Callable[[T], tuple[Hashable, str | None]],
                  sizes: Mapping[str, int], seed: int, what: str) -> dict[str, list[T]]:
    """One file's records divided into the splits ``sizes`` names (split → number of records), disjoint by input.

    ``input_of(record)`` is the input a record holds and its stratum; all records of one input go to
    one split (DART: a tripleset listed twice; dialogue: the dialogues of one context). The test split
    takes inputs from the start of :func:`stratified_order` until it holds ``sizes["test"]`` records
    (one input's records more at most), validation the next, train the next, so each is a stratified
    sample; inputs beyond them are left out. ``what`` names the file in the error raised when it holds
    too few records.
    """
    members: dict[Hashable, list[int]] = {}
    strata: dict[Hashable, str | None] = {}
    for index, record in enumerate(records):
        key, stratum = input_of(record)
        members.setdefault(key, []).append(index)
        strata.setdefault(key, stratum)
    order = iter(stratified_order(strata, seed))
    owner: dict[int, str] = {}
    for split in ("test", "validation", "train"):
        taken = 0
        while taken < sizes[split]:
            key = next(order, None)
            if key is None:
                asked = ", ".join(f"{name} {sizes[name]}" for name in SPLITS)
                raise HarnessError(f"{what}: {len(records)} records, fewer than the split sizes ask ({asked}); "
                                   "lower data.train_size, data.validation_size or data.test_size")
            owner.update((index, split) for index in members[key])
            taken += len(members[key])
    return {split: [r for i, r in enumerate(records) if owner.get(i) == split] for split in SPLITS}

"""Training batches: random or sortish (the reference's ``--sortish_sampler``), seeded and complete."""

from __future__ import annotations

import random

import pytest

from harness.data import SORTISH_WINDOW, TokenizedSplit, batches, sortish_order


def padded_share(lengths, order, batch_size):
    chunks = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    padded = sum(max(lengths[i] for i in c) * len(c) for c in chunks)
    return 1 - sum(lengths) / padded


@pytest.mark.parametrize("n, batch_size", [(1, 4), (7, 4), (1000, 8), (2001, 16)])
def test_sortish_is_a_seeded_permutation_with_the_longest_batch_first(n, batch_size):
    rng = random.Random(n)
    lengths = [rng.randint(1, 60) for _ in range(n)]
    order = sortish_order(lengths, batch_size, random.Random(5))
    assert sorted(order) == list(range(n))
    assert order == sortish_order(lengths, batch_size, random.Random(5))
    assert max(lengths[i] for i in order[:batch_size]) == max(lengths)
    if n >= 1000:
        assert order != sortish_order(lengths, batch_size, random.Random(6))
        # each batch comes from one sorted window: its lengths are close, so little of it is padding
        random_order = list(range(n))
        random.Random(5).shuffle(random_order)
        assert padded_share(lengths, order, batch_size) < 0.1 < padded_share(lengths, random_order, batch_size)


def test_sortish_batches_hold_similar_lengths_but_come_in_random_order():
    lengths = list(range(1, 8 * SORTISH_WINDOW * 4 + 1))   # four windows of distinct lengths
    order = sortish_order(lengths, 8, random.Random(0))
    chunks = [order[i: i + 8] for i in range(0, len(order), 8)]
    maxima = [max(lengths[i] for i in c) for c in chunks]
    assert maxima != sorted(maxima, reverse=True) and maxima != sorted(maxima)   # batches are shuffled
    assert all(sorted((lengths[i] for i in c), reverse=True) == [lengths[i] for i in c] for c in chunks)


def test_batches_with_sortish_cover_the_split_once():
    sources = [[1] * random.Random(i).randint(1, 30) for i in range(50)]
    split = TokenizedSplit([None] * 50, sources, [[2, 3]] * 50)
    seen = [i for b in batches(split, 8, 0, shuffle=True, seed=3, sortish=True) for i in b.index]
    assert sorted(seen) == list(range(50))
    assert seen == sortish_order([len(s) for s in sources], 8, random.Random(3))

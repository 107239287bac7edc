"""Tokenised splits and padded batches."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterator, Mapping, Sequence

import torch

from .lm import Prefix
from .methods.topk import TopK, padded_rows
from .task import Example


@dataclass(frozen=True)
class TokenizedSplit:
    """One tokenised split; immutable: what later stages attach (the offline teacher outputs, the teacher-output
    store's rows) makes a new split (:meth:`with_teacher_outputs`, :meth:`with_stored_teacher`), so a stage never
    sees what another stage gave a split it does not depend on."""

    examples: list[Example]
    sources: list[list[int]]
    targets: list[list[int]]
    teacher_outputs: list[list[int]] | None = None   # offline pseudo-labels, aligned with examples
    truncated_sources: int = 0
    truncated_targets: int = 0
    #: prefix source → the teacher-output store's rows (one TopK [T_i, k] per example), aligned with examples
    stored_teacher: Mapping[str, list[TopK]] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "stored_teacher", MappingProxyType(dict(self.stored_teacher)))   # read-only

    def __len__(self) -> int:
        return len(self.examples)

    def with_teacher_outputs(self, outputs: Sequence[list[int]]) -> "TokenizedSplit":
        """This split with the offline teacher outputs ``outputs`` (one per example), as a new split."""
        if len(outputs) != len(self):
            raise ValueError(f"{len(outputs)} teacher outputs for a split of {len(self)} examples")
        return dataclasses.replace(self, teacher_outputs=list(outputs))

    def with_stored_teacher(self, source: str, rows: Sequence[TopK]) -> "TokenizedSplit":
        """This split with the teacher-output store's ``rows`` of prefix source ``source`` (one per example), as a
        new split."""
        if len(rows) != len(self):
            raise ValueError(f"{len(rows)} stored teacher rows of {source!r} for a split of {len(self)} examples")
        return dataclasses.replace(self, stored_teacher={**self.stored_teacher, source: list(rows)})

    def one_per_source(self) -> "TokenizedSplit":
        """The first example of each distinct source (its offline output kept aligned)."""
        seen: set[str] = set()
        keep = [i for i, e in enumerate(self.examples) if not (e.source in seen or seen.add(e.source))]
        pick = lambda rows: None if rows is None else [rows[i] for i in keep]  # noqa: E731
        return TokenizedSplit([self.examples[i] for i in keep], pick(self.sources), pick(self.targets),
                              pick(self.teacher_outputs), self.truncated_sources, self.truncated_targets,
                              {source: pick(rows) for source, rows in self.stored_teacher.items()})


def template_prefix(tokenizer) -> list[int]:
    """The tokens the tokenizer's own template puts before a text: ``[BOS]`` for the hub's BART tokenizer
    (``<s> … </s>``, which the reference feeds BART: ``dart/utils.py:167-171``, ``add_special_tokens=True``);
    none for T5's (``… </s>``), GPT-2's and the tokenizers the harness trains (no template at all)."""
    special = tokenizer("", add_special_tokens=True)["input_ids"]
    bos = tokenizer.bos_token_id
    return [bos] if special and bos is not None and special[0] == bos != tokenizer.eos_token_id else []


def tokenize(tokenizer, texts: Sequence[str], max_tokens: int, side: str = "right") -> tuple[list[list[int]], int]:
    """Token ids between the tokenizer's template prefix (:func:`template_prefix`: BART's ``<s>``) and EOS,
    truncated to ``max_tokens`` (both kept, as transformers' truncation keeps special tokens); returns the ids
    and how many were cut.

    ``side`` is the side tokens are cut from, as transformers' ``truncation_side``: "right"
    keeps the start of a text, "left" its end (the latest turns of a dialogue history).
    """
    if side not in ("right", "left"):
        raise ValueError(f"truncation side must be 'right' or 'left', got {side!r}")
    eos, prefix = tokenizer.eos_token_id, template_prefix(tokenizer)
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    out, cut = [], 0
    for seq in ids:
        if len(prefix) + len(seq) + 1 > max_tokens:
            keep = max_tokens - len(prefix) - 1
            seq, cut = (seq[:keep] if side == "right" else seq[len(seq) - keep:]), cut + 1
        out.append(prefix + list(seq) + [eos])
    return out, cut


def with_source_cap(split: TokenizedSplit, tokenizer, max_source: int, side: str = "right") -> TokenizedSplit:
    """``split`` with its sources tokenised again under the cap ``max_source`` (as :func:`tokenize` cuts them, and
    counted); targets, offline outputs and stored teacher rows stay as they are."""
    sources, cut = tokenize(tokenizer, [e.source for e in split.examples], max_source, side)
    return dataclasses.replace(split, sources=sources, truncated_sources=cut)


def as_target(tokens: Sequence[int], prefix: Sequence[int], max_tokens: int, eos: int) -> list[int]:
    """A decoded output (a pseudo-label) in the form of a tokenised target: led by the template prefix (BART's
    ``<s>``) as the reference's pseudo-labels are, whose text it re-tokenises with the targets' template; cut to
    ``max_tokens``; an empty output is EOS alone."""
    tokens, prefix = list(tokens), list(prefix)
    if prefix and tokens[:len(prefix)] != prefix:
        tokens = prefix + tokens
    return tokens[:max_tokens] or [eos]


def tokenize_split(examples: list[Example], tokenizer, max_source: int, max_target: int,
                   source_truncation: str = "right") -> TokenizedSplit:
    """Sources cut from ``source_truncation``'s side, targets always from the right."""
    sources, cut_s = tokenize(tokenizer, [e.source for e in examples], max_source, source_truncation)
    targets, cut_t = tokenize(tokenizer, [e.target for e in examples], max_target)
    return TokenizedSplit(examples, sources, targets, None, cut_s, cut_t)


def pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max((len(s) for s in seqs), default=1) or 1
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


@dataclass
class Batch:
    index: list[int]
    source_ids: torch.Tensor
    source_mask: torch.Tensor
    target: Prefix                       # ground truth
    teacher_output: Prefix | None = None  # offline teacher beam output
    extra: dict = field(default_factory=dict)
    #: prefix source → the teacher's stored distributions on that source's prefixes ([B, T, k], padded like them)
    stored_teacher: dict[str, TopK] = field(default_factory=dict)

    @property
    def target_mask(self) -> torch.Tensor:
        return self.target.mask

    def to(self, device) -> "Batch":
        move = lambda p: None if p is None else Prefix(p.tokens.to(device), p.mask.to(device))  # noqa: E731
        stored = {source: TopK(d.indices.to(device), d.log_probs.to(device), d.tail_log_mass.to(device),
                               d.vocab_size) for source, d in self.stored_teacher.items()}
        return Batch(self.index, self.source_ids.to(device), self.source_mask.to(device),
                     move(self.target), move(self.teacher_output), self.extra, stored)

    def __len__(self) -> int:
        return len(self.index)


def make_batch(split: TokenizedSplit, index: list[int], pad_id: int) -> Batch:
    src, src_mask = pad([split.sources[i] for i in index], pad_id)
    tgt, tgt_mask = pad([split.targets[i] for i in index], pad_id)
    teacher = None
    if split.teacher_outputs is not None:
        teacher = Prefix(*pad([split.teacher_outputs[i] for i in index], pad_id))
    stored = {source: padded_rows([rows[i] for i in index]) for source, rows in split.stored_teacher.items()}
    return Batch(list(index), src, src_mask, Prefix(tgt, tgt_mask), teacher, stored_teacher=stored)


SORTISH_WINDOW = 50   # batches whose examples sortish batching sorts together (fastai's and the reference's 50)


def sortish_order(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[int]:
    """Example order of one epoch of sortish batching (fastai's ``SortishSampler``, which the reference's
    ``--sortish_sampler`` uses): shuffle, sort each window of ``SORTISH_WINDOW`` batches by length (longest
    first), cut into batches, put the batch of the longest examples first and shuffle the others; a short last
    batch stays last (the reference shuffles it in too, which shifts the cut of every later batch). Batches hold examples of similar length, so little of a batch is padding; the order is still random."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * SORTISH_WINDOW
    ranked = [i for start in range(0, len(order), window)
              for i in sorted(order[start: start + window], key=lambda i: -lengths[i])]
    chunks = [ranked[start: start + batch_size] for start in range(0, len(ranked), batch_size)]
    if not chunks:
        return []
    short = [chunks.pop()] if len(chunks[-1]) < batch_size else []
    if not chunks:
        return short[0]
    longest = max(range(len(chunks)), key=lambda c: lengths[chunks[c][0]])
    chunks[0], chunks[longest] = chunks[longest], chunks[0]
    rest = chunks[1:]
    rng.shuffle(rest)
    return [i for chunk in [chunks[0], *rest, *short] for i in chunk]


def shard_rows(index: Sequence[int], rank: int, processes: int) -> list[int]:
    """Rank ``rank``'s rows of a batch split over ``processes`` data-parallel processes: contiguous shards
    whose sizes differ by at most one, the larger first (a shard is empty when the batch has fewer rows than
    there are processes)."""
    size, extra = divmod(len(index), processes)
    start = rank * size + min(rank, extra)
    return list(index[start: start + size + (rank < extra)])


def batches(split: TokenizedSplit, batch_size: int, pad_id: int, *, shuffle: bool = False,
            seed: int = 0, by_length: bool = False, sortish: bool = False,
            shard: tuple[int, int] | None = None) -> Iterator[Batch]:
    """Batches in order, shuffled (seeded; with ``sortish``, in batches of similar source length:
    :func:`sortish_order`), or sorted by source length (less padding when decoding). ``shard`` = (rank,
    processes): each batch holds only that rank's rows of the global batch (:func:`shard_rows`), the global
    batches being the same on every rank."""
    order = list(range(len(split)))
    if shuffle and sortish:
        order = sortish_order([len(s) for s in split.sources], batch_size, random.Random(seed))
    elif shuffle:
        random.Random(seed).shuffle(order)
    elif by_length:
        order.sort(key=lambda i: len(split.sources[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start: start + batch_size]
        yield make_batch(split, rows if shard is None else shard_rows(rows, *shard), pad_id)


def num_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size

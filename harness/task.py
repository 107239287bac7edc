"""The task plugin interface.

A task turns one data set into :class:`Example` records in three splits and scores
hypotheses against references. Everything else (tokenizing, models, training) is
shared. A task ships an *embedded twin*: a seeded generator of records in the real
data set's schema, so every command works offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    """One model input with its references.

    ``target`` is the reference a training step uses; ``references`` are all the
    references of the input (for metrics). Training splits hold one example per
    (input, reference) pair, evaluation splits one per input.
    """

    id: str
    source: str
    target: str
    references: tuple[str, ...]


@dataclass
class Scores:
    corpus: dict[str, float]            # metric name → corpus-level score
    signatures: dict[str, str]          # metric name → library signature (how it was computed)
    per_example: dict[str, list[float]]  # metric name → one score per hypothesis


class Task:
    """Base class of task plugins; register subclasses with ``@register_task("name")``."""

    name: ClassVar[str] = ""
    architecture: ClassVar[str] = "encoder-decoder"   # or "decoder-only"
    metrics: ClassVar[tuple[str, ...]] = ()
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    selection_metric: ClassVar[str] = ""              # validation metric for checkpoint selection
    #: method name → parameter defaults on this task, e.g. ``{"js": {"beta": 0.85}}``; methods not
    #: named here keep their own ``Params`` defaults; ``--set method.NAME=…`` overrides both.
    method_defaults: ClassVar[dict[str, dict]] = {}
    data_sources: ClassVar[tuple[str, ...]] = ("embedded",)
    # Where an over-long source loses tokens (transformers' truncation_side): "right" keeps its
    # start (a document's lead), "left" its end (the latest turns of a dialogue history).
    source_truncation: ClassVar[str] = "right"

    def __init__(self, data_config):
        self.data = data_config

    def load(self, split: str) -> list[Example]:
        raise NotImplementedError

    def score(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Scores:
        raise NotImplementedError

    @classmethod
    def check_declaration(cls) -> None:
        """The metric names a task declares are among its ``metrics`` (a plugin's typo fails here, in one line)."""
        from .errors import HarnessError, UnknownNameError

        for attribute, names in (("selection_metric", [cls.selection_metric]),
                                 ("lower_is_better", sorted(cls.lower_is_better))):
            for name in names:
                if name not in cls.metrics:
                    raise HarnessError(f"task {cls.name!r} declares {attribute}={name!r}: "
                                       f"{UnknownNameError('metric', name, list(cls.metrics))}")
        if cls.source_truncation not in ("right", "left"):
            raise HarnessError(f"task {cls.name!r} declares source_truncation={cls.source_truncation!r}: "
                               f"expected 'right' (keep the start) or 'left' (keep the end)")

    @classmethod
    def method_defaults_for(cls, profile: str | None) -> dict[str, dict]:
        """``method_defaults`` under ``profile``; override to give a profile its own (e.g. the paper recipe's
        pre-distillation temperature) without changing the others."""
        return cls.method_defaults

    @classmethod
    def profile_overrides(cls, profile: str) -> dict:
        """Task-specific config overrides (dotted keys) applied on top of a profile."""
        return {}

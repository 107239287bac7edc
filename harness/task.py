"""The task plugin interface.

A task turns one data set into :class:`Example` records in three splits and scores
hypotheses against references. Everything else (tokenizing, models, training) is
shared. A task ships an *embedded twin*: a seeded generator of records in the real
data set's schema, so every command works offline.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    """One model input with its references.

    ``target`` is the reference a training step uses; ``references`` are all the
    references of the input (for metrics). Training splits hold one example per
    (input, reference) pair, evaluation splits one per input. ``stratum`` names the part of
    the data set the input comes from (DART: ``webnlg``, ``e2e``, …), so that a capped split
    draws every part in proportion (:mod:`harness.datasets.sampling`); it is no part of the
    example's equality.
    """

    id: str
    source: str
    target: str
    references: tuple[str, ...]
    stratum: str | None = field(default=None, compare=False)


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
    #: the reference recipe of the ``paper`` profile, each value beside its source (:mod:`harness.recipe`)
    paper_recipe: ClassVar[dict | None] = None
    #: a column of the paper's tables (its metric name, as the published numbers name it) → the metric of this
    #: task computed the paper's way (``{"bleu": "bleu_official"}``); the columns every task shares (the risks,
    #: TeacherDist) are in :data:`harness.paper.PAPER_METRICS`
    paper_metrics: ClassVar[dict[str, str]] = {}
    data_sources: ClassVar[tuple[str, ...]] = ("embedded",)
    # Where an over-long source loses tokens (transformers' truncation_side): "right" keeps its
    # start (a document's lead), "left" its end (the latest turns of a dialogue history).
    source_truncation: ClassVar[str] = "right"

    #: the hub data set (``data.source=hub``) when the data config names none
    hub_id: ClassVar[str | None] = None
    hub_revision: ClassVar[str | None] = None

    def __init__(self, data_config):
        self.data = data_config

    def data_identity(self) -> dict:
        """What determines this task's examples, without loading them: the stage cache keys the data by it.

        The task, its data config and the data it names: for ``local`` the sha256 of every file under
        ``data_dir`` (by relative path, so the same files elsewhere share the key), for ``hub`` the data
        set id and revision. An embedded twin is a function of its config and its code (the code enters
        the data keys separately: :func:`harness.pipeline.graph.data_key`). Override when a task's examples
        depend on something else. The run id holds it whole; a stage's key each split's part that it reads
        (:meth:`split_identity`).
        """
        import dataclasses

        config = dataclasses.asdict(self.data)
        if not config.get("merge_test_inputs"):   # a later setting: at its default, identities made before stay valid
            config.pop("merge_test_inputs", None)
        identity = {"task": self.name, "data": config}
        if self.data.source == "local" and self.data.data_dir:
            config.pop("data_dir")
            identity["files"] = _file_digests(Path(self.data.data_dir).expanduser())
        elif self.data.source == "hub":
            identity["hub"] = {"id": self.data.hub_id or self.hub_id,
                               "revision": self.data.revision or self.hub_revision}
        return identity

    def split_selectors(self) -> dict[str, tuple[str, ...]]:
        """Data config field → the splits whose examples it selects; a field not named selects every split.

        The sizes ask the twin (or ``split_from``) for each split's own inputs, the caps draw from one split
        (:func:`harness.pipeline.load.load_examples`: ``max_eval_examples`` from validation and test), and
        ``merge_test_inputs`` shapes the test split alone (:meth:`harness.datasets.sources.SourcedTask.load`).
        An embedded twin draws each split from ``(split, size, seed)`` alone, so its other splits stay as they
        are when one size grows. ``data.split_from`` divides one file in the order test, validation, train
        (:func:`harness.datasets.sampling.split_records`): a split there takes its inputs after those of the
        splits before it, so their sizes select it too. Override when a task's split reads another's setting."""
        selects = {"train_size": ("train",), "train_subset": ("train",), "max_train_examples": ("train",),
                   "validation_size": ("validation",), "test_size": ("test",),
                   "max_eval_examples": ("validation", "test"), "merge_test_inputs": ("test",)}
        if self.data.split_from:
            selects.update(test_size=SPLITS, validation_size=("validation", "train"))
        return selects

    def split_identity(self, split: str) -> dict:
        """What determines the examples of ``split`` alone: :meth:`data_identity` without the fields that select
        only other splits' examples (:meth:`split_selectors`). A stage's key holds the identities of the splits it
        reads (:func:`harness.pipeline.graph.plan_cell`), so a larger test split re-keys the evaluations only."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        identity = self.data_identity()
        config = identity.get("data")
        if isinstance(config, dict):
            identity["data"] = {name: value for name, value in config.items()
                                if split in self.split_selectors().get(name, SPLITS)}
        return identity

    @classmethod
    def describe(cls) -> dict:
        """What a run records of its task (manifest ``task``): the readers take metric directions from it, and
        ``--compare paper`` the metrics comparable to the paper's columns."""
        return {"name": cls.name, "architecture": cls.architecture, "metrics": list(cls.metrics),
                "lower_is_better": sorted(cls.lower_is_better), "selection_metric": cls.selection_metric,
                "paper_metrics": dict(cls.paper_metrics)}

    def teacher_dist_text(self, sample: str) -> str:
        """A teacher sample as the paper's TeacherDist script counts it (``teacher_dist_paper``): the text
        itself, unless the task's script trims it first."""
        return sample

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
        """``method_defaults`` under ``profile``: the ``paper`` profile takes the method parameters of the task's
        ``paper_recipe`` (e.g. the pre-distillation temperature); override for other profiles of one's own."""
        if profile == "paper" and cls.paper_recipe:
            from .recipe import method_defaults

            return method_defaults(cls.paper_recipe)
        return cls.method_defaults

    @classmethod
    def profile_overrides(cls, profile: str) -> dict:
        """Task-specific config overrides (dotted keys) applied on top of a profile."""
        return {}


def _file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by path relative to it (sorted); {} if it does not exist
    (loading the data reports that). A file's digest is kept while its size and mtime stay: a grid plans
    many cells on the same files."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        out[path.relative_to(folder).as_posix()] = _file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return out


@functools.lru_cache(maxsize=None)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    from .store.io import sha256_file

    return sha256_file(Path(path))
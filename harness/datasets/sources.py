"""Where a task's records come from: ``data.source`` = embedded | local | hub.

:class:`SourcedTask` is the base of a task whose records come from one of these
sources. It owns the one dispatch from ``data.source`` to the task's hook for that
source and the errors a user meets on the way (an unknown source, a local source
without a folder); the task supplies the hooks:

* ``embedded_records(split, size, seed)``: the embedded twin's records;
* ``local_records(data_dir, split)``: the records of the release files in a folder;
* ``hub_records(hub_id, revision, split)``: the records of the Hugging Face hub copy
  (``data.hub_id``/``data.revision`` override the task's ``hub_id``/``hub_revision``);
* ``to_examples(records, split)``: records → :class:`Example` s;
* ``record_input(record)``: the input a record holds and its stratum, for ``data.split_from``:
  one file of a local or hub source divided into the three splits, disjoint by input
  (:func:`harness.datasets.sampling.split_records`).

:func:`hub_rows` is the hub reader every ``hub_records`` hook uses: any failure to
get the data becomes one line that points the user at local files instead.
"""

from __future__ import annotations

from typing import Any, ClassVar, Hashable

from harness.errors import HarnessError
from harness.task import Example, Task

from .release import one_line
from .sampling import split_records

SOURCES = ("embedded", "local", "hub")


class SourcedTask(Task):
    """A task whose records come from the embedded twin, local release files or the hub."""

    data_sources: ClassVar[tuple[str, ...]] = SOURCES
    hub_id: ClassVar[str] = ""                  # the hub copy of the data set
    hub_revision: ClassVar[str | None] = None   # its revision (e.g. the hub's parquet export)

    def embedded_records(self, split: str, size: int, seed: int) -> list:
        raise NotImplementedError

    def local_records(self, data_dir: str, split: str) -> list:
        raise NotImplementedError

    def hub_records(self, hub_id: str, revision: str | None, split: str) -> list:
        raise NotImplementedError

    def to_examples(self, records: list, split: str) -> list[Example]:
        raise NotImplementedError

    def record_input(self, record) -> tuple[Hashable, str | None]:
        raise HarnessError(f"task {self.name} cannot divide one file into splits (data.split_from): "
                           "it names no input of a record")

    def records(self, split: str) -> list:
        """The records of ``split`` from the configured ``data.source`` (and ``data.split_from``)."""
        d = self.data
        if d.source not in self.data_sources or d.source not in SOURCES:
            raise HarnessError(f"unknown data source {d.source!r} for task {self.name}; "
                               f"known: {', '.join(self.data_sources)}")
        sizes = {"train": d.train_size, "validation": d.validation_size, "test": d.test_size}
        if d.source == "embedded":
            if d.split_from:
                raise HarnessError("data.split_from divides a release file: it needs --data-dir DIR "
                                   "(data.source=local) or data.source=hub")
            return self.embedded_records(split, sizes[split], d.seed)
        if d.split_from:   # one file divided into the three splits, once (load() asks for each split)
            if getattr(self, "_divided", None) is None:
                self._divided = split_records(self.source_records(d.split_from), self.record_input, sizes, d.seed,
                                              f"task {self.name}: the {d.split_from} split of data.source={d.source}")
            return self._divided[split]
        return self.source_records(split)

    def source_records(self, split: str) -> list:
        """The records of ``split`` as the local or hub source holds them."""
        d = self.data
        if d.source == "local":
            if not d.data_dir:
                raise HarnessError("data.source=local needs a folder: --data-dir DIR (or --set data.data_dir=DIR)")
            return self.local_records(d.data_dir, split)
        return self.hub_records(d.hub_id or self.hub_id, d.revision or self.hub_revision, split)

    def load(self, split: str) -> list[Example]:
        examples = self.to_examples(self.records(split), split)
        return merge_inputs(examples) if split == "test" and self.data.merge_test_inputs else examples


def merge_inputs(examples: list[Example]) -> list[Example]:
    """One example per distinct input (``source``), where the input first appears: its id, target and stratum
    those of that first example, its references those of every example of the input, in order (duplicates
    kept). DART's test release lists 5,097 entries over 4,159 distinct triplesets; the paper's kit scores the
    4,159, their annotations merged (``dart/utils.py:364-396``)."""
    merged: dict[str, tuple[Example, list[str]]] = {}
    for e in examples:
        merged.setdefault(e.source, (e, []))[1].extend(e.references)
    return [Example(first.id, first.source, first.target, tuple(references), first.stratum)
            for first, references in merged.values()]


def hub_rows(what: str, hub_id: str, revision: str | None, split: str, local_files: str,
             config: str | None = None) -> list[Any]:
    """The rows of ``split`` of a Hugging Face data set (or of a local folder in the hub layout).

    Any failure to get them (offline, unknown id, config or revision, missing split, ...)
    becomes one :class:`HarnessError` line naming ``what`` (the data set) that points to
    ``local_files`` (what to put in a ``--data-dir`` folder) instead.
    """
    try:
        import datasets

        return datasets.load_dataset(hub_id, config, revision=revision, split=split).to_list()
    except Exception as err:  # noqa: BLE001 - any failure means "could not load"; report it in one line
        named = f"{hub_id!r}" + (f", config {config!r}" if config else "")
        raise HarnessError(
            f"could not load {what} from the hub ({named}, revision {revision!r}): {one_line(err)}. "
            f"Offline? Point the task at {local_files} instead: --data-dir DIR "
            "(or --set data.source=local --set data.data_dir=DIR)") from None

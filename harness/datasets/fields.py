"""A task read from per-split files by naming its fields: the shortest way to a task plugin.

    @register_task("qa")
    class QA(FieldsTask):
        source_field, target_field = "question", "answers"   # a string or a list of strings
        metrics = ("exact_match",)
        selection_metric = "exact_match"

        def score(self, hypotheses, references):
            return exact_match_scores(hypotheses, references)

``harness run --task qa --method js --data-dir DIR`` then reads ``train``/``validation``/
``test`` files from DIR in any format :mod:`harness.datasets.split_files` finds (JSON lines,
JSON, CSV, parquet); a record that lacks a field or holds the wrong type stops the run
with one line naming the file and the record.
"""

from __future__ import annotations

from typing import ClassVar

from harness.errors import HarnessError
from harness.task import Example

from .release import short
from .sources import SourcedTask
from .split_files import Located, read_split


class FieldsTask(SourcedTask):
    """Records from local per-split files; ``source_field`` → the input, ``target_field`` → the reference(s)."""

    data_sources: ClassVar[tuple[str, ...]] = ("local",)
    source_field: ClassVar[str] = "source"
    #: a string, or a list of strings (several references: training uses each as a target)
    target_field: ClassVar[str] = "target"

    def local_records(self, data_dir: str, split: str) -> list[Located]:
        return list(read_split(data_dir, split, (), f"task {self.name}"))

    def to_examples(self, records: list[Located], split: str) -> list[Example]:
        examples = []
        for located in records:
            record, where = located.record, f"{located.where}: record {located.index}"
            if not isinstance(record, dict):
                raise HarnessError(f"{where}: expected an object with fields {self.source_field!r} and "
                                   f"{self.target_field!r}, got {short(record)}")
            for field in (self.source_field, self.target_field):
                if field not in record:
                    raise HarnessError(f"{where}: no field {field!r} (fields: {', '.join(map(str, record)) or 'none'})")
            source, target = record[self.source_field], record[self.target_field]
            references = [target] if isinstance(target, str) else target
            if not isinstance(source, str) or not source.strip():
                raise HarnessError(f"{where}: field {self.source_field!r} must be a non-empty string, got "
                                   f"{short(source)}")
            if not isinstance(references, list) or not references or \
                    not all(isinstance(r, str) and r.strip() for r in references):
                raise HarnessError(f"{where}: field {self.target_field!r} must be a non-empty string or a list of "
                                   f"them, got {short(target)}")
            ident = f"{split}-{located.index}"
            if split == "train":
                examples += [Example(f"{ident}-{i}", source, r, tuple(references)) for i, r in enumerate(references)]
            else:
                examples.append(Example(ident, source, references[0], tuple(references)))
        return examples

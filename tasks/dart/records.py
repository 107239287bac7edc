"""Reading, validating and converting DART records.

Two sources hold the same records in slightly different shapes:

* the release JSON files (``dart-v1.1.1-full-{train,dev,test}.json``): a JSON list of
  ``{"tripleset": [[s, p, o], ...], "subtree_was_extended": bool,
  "annotations": [{"source": str, "text": str}, ...]}``
  (``subtree_was_extended`` is absent from some records, e.g. those from E2E);
* the Hugging Face hub copy (``Yale-LILY/dart``, parquet under ``refs/convert/parquet``),
  where ``annotations`` is a dict of lists ``{"source": [...], "text": [...]}``.

Both go through :func:`normalise_record`, which validates a record and returns it in
the release shape; :func:`records_to_examples` turns records into :class:`Example` s.
Every problem with the data is reported as a one-line :class:`HarnessError` that names
the file (or hub data set) and the first bad record.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from harness.datasets.release import check_split, read_json, record_error, release_file, short
from harness.datasets.sources import hub_rows
from harness.task import Example

log = logging.getLogger(__name__)

RELEASE_FILES = {
    "train": "dart-v1.1.1-full-train.json",
    "validation": "dart-v1.1.1-full-dev.json",
    "test": "dart-v1.1.1-full-test.json",
}

_ANNOTATIONS_MSG = "'annotations' must be a non-empty list of {source, text}"


# --------------------------------------------------------------------------- validation
def _is_sequence(value: Any) -> bool:
    """A JSON array as Python sees it (lists; tuples from hand-built records)."""
    return isinstance(value, (list, tuple))


def _normalise_tripleset(value: Any, where: str, index: int) -> list[list[str]]:
    if not _is_sequence(value) or not value:
        raise record_error(where, index, "'tripleset' must be a non-empty list of [subject, predicate, object]")
    triples = []
    for j, triple in enumerate(value):
        if not _is_sequence(triple) or len(triple) != 3 or not all(isinstance(x, str) for x in triple):
            raise record_error(where, index,
                               f"triple {j} must be a list of 3 strings [subject, predicate, object], "
                               f"got {short(triple)}")
        triples.append([triple[0], triple[1], triple[2]])
    return triples


def _normalise_annotations(value: Any, where: str, index: int) -> list[dict[str, str]]:
    if isinstance(value, Mapping):
        # Hub shape: {"source": [...], "text": [...]} (columns of equal length).
        if set(value) != {"source", "text"}:
            raise record_error(where, index, f"{_ANNOTATIONS_MSG} (got a dict with keys {sorted(value)})")
        sources, texts = value["source"], value["text"]
        if not _is_sequence(sources) or not _is_sequence(texts) or len(sources) != len(texts):
            raise record_error(where, index,
                               "'annotations' as a dict must hold lists 'source' and 'text' of equal length")
        value = [{"source": s, "text": t} for s, t in zip(sources, texts)]
    if not _is_sequence(value) or not value:
        raise record_error(where, index, _ANNOTATIONS_MSG)
    annotations = []
    for j, ann in enumerate(value):
        if not isinstance(ann, Mapping) or "text" not in ann:
            raise record_error(where, index, f"{_ANNOTATIONS_MSG}; annotation {j} is {short(ann)}")
        text, source = ann["text"], ann.get("source", "")
        if not isinstance(text, str):
            raise record_error(where, index,
                               f"annotation {j}: 'text' must be a string, got {type(text).__name__}")
        if not isinstance(source, str):
            raise record_error(where, index,
                               f"annotation {j}: 'source' must be a string, got {type(source).__name__}")
        annotations.append({"source": source, "text": text})
    return annotations


def normalise_record(record: dict, where: str, index: int) -> dict:
    """Validate one DART record and return it in the release shape.

    Accepts the release shape (``annotations`` a list of ``{source, text}``) and the
    hub shape (``annotations`` a dict of lists). The result has ``tripleset`` (lists
    of 3 strings), ``annotations`` (list of ``{"source", "text"}``) and, when the input
    has a non-null one, ``subtree_was_extended`` (bool); other keys are dropped.
    Texts are kept as they are (empty texts included: they are skipped, and counted,
    by :func:`records_to_examples`). Raises :class:`HarnessError` naming ``where`` and
    ``index`` on the first problem.
    """
    if not isinstance(record, Mapping):
        raise record_error(where, index, f"must be a JSON object, got {type(record).__name__}")
    missing = [key for key in ("tripleset", "annotations") if key not in record]
    if missing:
        raise record_error(where, index, f"missing required field(s) {', '.join(map(repr, missing))}")
    out: dict[str, Any] = {
        "tripleset": _normalise_tripleset(record["tripleset"], where, index),
    }
    extended = record.get("subtree_was_extended")
    if extended is not None:
        if not isinstance(extended, bool):
            raise record_error(where, index,
                               f"'subtree_was_extended' must be true or false, got {short(extended)}")
        out["subtree_was_extended"] = extended
    out["annotations"] = _normalise_annotations(record["annotations"], where, index)
    return out


# --------------------------------------------------------------------------- loaders
def read_release_json(path) -> list[dict]:
    """Read and validate one release JSON file; records come back in the release shape."""
    data = read_json(path, list, "a JSON list of DART records")
    return [normalise_record(record, str(path), i) for i, record in enumerate(data)]


def load_local(data_dir, split: str) -> list[dict]:
    """Records of ``split`` from the release file in ``data_dir``."""
    return read_release_json(release_file(data_dir, split, RELEASE_FILES, "DART"))


def load_hub(hub_id: str, revision: str | None, split: str) -> list[dict]:
    """Records of ``split`` from a Hugging Face data set (or a local folder of parquet
    files in the hub shape), normalised to the release shape.

    Any failure to get the data (offline, unknown id, missing split, ...) becomes one
    :class:`HarnessError` line that points to the local release files instead.
    """
    check_split(split, "DART")
    rows = hub_rows("DART", hub_id, revision, split, f"the release JSON files ({', '.join(RELEASE_FILES.values())})")
    return [normalise_record(row, f"{hub_id} [{split}]", i) for i, row in enumerate(rows)]


# --------------------------------------------------------------------------- conversion
def linearise(tripleset: Iterable[Iterable[str]]) -> str:
    """The DART paper's linearisation ``subj : rel : obj | subj : rel : obj``,
    with only the predicate lower-cased."""
    return " | ".join(f"{s} : {p.lower()} : {o}" for s, p, o in tripleset)


def record_stratum(record: dict) -> str | None:
    """The part of DART a record comes from: its annotations' ``source`` (``webnlg``, ``e2e``,
    ``WikiSQL_decl_sents``, …; several joined by "+"), None when they name none."""
    return "+".join(sorted({ann["source"] for ann in record["annotations"] if ann["source"]})) or None


def record_input(record: dict) -> tuple[str, str | None]:
    """The input a record holds (its linearised tripleset, the model's source) and its stratum."""
    return linearise(record["tripleset"]), record_stratum(record)


def records_to_examples(records: Iterable[dict], split: str, id_prefix: str = "dart") -> list[Example]:
    """Turn release-shape records into examples.

    Training split: one example per (tripleset, non-empty annotation), its text the
    target. Evaluation splits: one example per tripleset, the first non-empty
    annotation the target. ``references`` are always all non-empty annotation texts of
    the tripleset (whitespace stripped). Ids keep the original record and annotation
    indices, so they are stable when empty annotations are skipped. Records without any
    non-empty text are skipped; skipped annotations are counted and logged. Each example's
    ``stratum`` is its record's DART source (:func:`record_stratum`).
    """
    check_split(split, "DART")
    examples: list[Example] = []
    empty_annotations = 0
    empty_records = 0
    for i, record in enumerate(records):
        source, stratum = record_input(record)
        texts = [(j, ann["text"].strip()) for j, ann in enumerate(record["annotations"])]
        kept = [(j, t) for j, t in texts if t]
        empty_annotations += len(texts) - len(kept)
        if not kept:
            empty_records += 1
            continue
        references = tuple(t for _, t in kept)
        if split == "train":
            examples.extend(Example(id=f"{id_prefix}-{split}-{i}-{j}", source=source, target=t,
                                    references=references, stratum=stratum) for j, t in kept)
        else:
            examples.append(Example(id=f"{id_prefix}-{split}-{i}", source=source,
                                    target=references[0], references=references, stratum=stratum))
    if empty_annotations:
        log.warning("DART %s: skipped %d empty annotation text(s); %d record(s) had no text at all",
                    split, empty_annotations, empty_records)
    return examples

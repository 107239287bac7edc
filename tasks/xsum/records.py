"""Reading, validating and converting XSum records.

A record is ``{"document": str, "summary": str, "id": str}`` — the schema of the hub
copy (``EdinburghNLP/xsum``) and of the embedded twin. Sources:

* the hub, through ``datasets`` (default revision ``refs/convert/parquet``, the hub's
  own parquet export, which needs no loading script);
* a local folder (``data.source=local``, ``--data-dir DIR``) with one file per split,
  named after the hub's splits: ``train``, ``validation``, ``test`` as ``.jsonl``,
  ``.json`` or ``.parquet`` (e.g. ``train.jsonl``), or the hub's parquet shards
  (``train-00000-of-00001.parquet``, also under ``data/`` or ``default/train/``);
  see :mod:`harness.datasets.split_files`.

Every record goes through :func:`normalise_record`; a bad one stops loading with a
one-line :class:`HarnessError` that names the file (or hub data set) and the record.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from harness.datasets.release import check_split, record_error
from harness.datasets.sources import hub_rows
from harness.datasets.split_files import read_split
from harness.task import Example

log = logging.getLogger(__name__)

LOCAL_SUBFOLDERS = ("data", "default")   # where hub copies keep their parquet shards
FIELDS = ("document", "summary")


def normalise_record(record: Any, where: str, index: int) -> dict:
    """Validate one record; return ``{"document", "summary", "id"}`` (other keys dropped).

    ``document`` and ``summary`` must be strings (empty ones are kept here and skipped,
    with a count, by :func:`records_to_examples`); ``id`` is optional and may be a string
    or an integer (it becomes a string; a missing id becomes the record's index).
    """
    if not isinstance(record, Mapping):
        raise record_error(where, index, f"must be a JSON object with {', '.join(FIELDS)}, got {type(record).__name__}")
    missing = [key for key in FIELDS if key not in record]
    if missing:
        raise record_error(where, index, f"missing required field(s) {', '.join(map(repr, missing))}")
    for key in FIELDS:
        if not isinstance(record[key], str):
            raise record_error(where, index, f"{key!r} must be a string, got {type(record[key]).__name__}")
    rid = record.get("id", index)
    if rid is None:
        rid = index
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise record_error(where, index, f"'id' must be a string or an integer, got {type(rid).__name__}")
    return {"document": record["document"], "summary": record["summary"], "id": str(rid)}


def load_local(data_dir, split: str) -> list[dict]:
    """Records of ``split`` from the per-split file in ``data_dir``."""
    check_split(split, "XSum")
    return [normalise_record(x.record, x.where, x.index)
            for x in read_split(data_dir, split, LOCAL_SUBFOLDERS, "XSum")]


def load_hub(hub_id: str, revision: str | None, split: str) -> list[dict]:
    """Records of ``split`` from a Hugging Face data set (or a local folder in the hub layout).

    Any failure to get the data (offline, unknown id or revision, missing split, ...)
    becomes one :class:`HarnessError` line that points to local files instead.
    """
    check_split(split, "XSum")
    rows = hub_rows("XSum", hub_id, revision, split,
                    "local files (train/validation/test as .jsonl, .json or .parquet)")
    return [normalise_record(row, f"{hub_id} [{split}]", i) for i, row in enumerate(rows)]


def clean_text(text: str) -> str:
    """Whitespace (the newlines between an article's sentences included) collapsed to single spaces."""
    return " ".join(text.split())


def records_to_examples(records: Iterable[dict], split: str, id_prefix: str = "xsum") -> list[Example]:
    """One example per record: the document (whitespace collapsed) → the summary.

    The summary is the only reference. Records whose document or summary is empty
    are skipped and counted in a warning.
    """
    check_split(split, "XSum")
    examples, skipped = [], 0
    for record in records:
        document, summary = clean_text(record["document"]), clean_text(record["summary"])
        if not document or not summary:
            skipped += 1
            continue
        examples.append(Example(id=f"{id_prefix}-{split}-{record['id']}", source=document, target=summary,
                                references=(summary,)))
    if skipped:
        log.warning("XSum %s: skipped %d record(s) with an empty document or summary", split, skipped)
    return examples

"""Reading, validating and converting WMT16 English–Romanian records.

A record is ``{"translation": {"en": str, "ro": str}}`` — the schema of the hub copy
(``wmt/wmt16``, config ``ro-en``; validation is newsdev2016, test newstest2016) and of
the embedded twin. Sources:

* the hub, through ``datasets`` (``load_dataset("wmt/wmt16", "ro-en")``);
* a local folder (``data.source=local``, ``--data-dir DIR``) with one file per split,
  named after the hub's splits: ``train``, ``validation``, ``test`` as ``.jsonl``,
  ``.json`` or ``.parquet`` (e.g. ``validation.jsonl``), or the hub's parquet shards
  (``train-00000-of-00001.parquet``, also under ``ro-en/`` or ``data/``);
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

HUB_CONFIG = "ro-en"
LOCAL_SUBFOLDERS = (HUB_CONFIG, "data")
SOURCE_LANGUAGE, TARGET_LANGUAGE = "en", "ro"
# The T5 task prefix (Raffel et al. 2020), which the paper's T5 teacher expects.
T5_PREFIX = "translate English to Romanian: "

_SHAPE = '{"translation": {"en": ..., "ro": ...}}'


def normalise_record(record: Any, where: str, index: int) -> dict:
    """Validate one record; return ``{"translation": {"en": str, "ro": str}}`` (other keys dropped)."""
    if not isinstance(record, Mapping):
        raise record_error(where, index, f"must be a JSON object {_SHAPE}, got {type(record).__name__}")
    if "translation" not in record:
        raise record_error(where, index, f"missing required field 'translation' (expected {_SHAPE})")
    pair = record["translation"]
    if not isinstance(pair, Mapping):
        raise record_error(where, index, f"'translation' must be an object {{\"en\": ..., \"ro\": ...}}, "
                                         f"got {type(pair).__name__}")
    out = {}
    for language in (SOURCE_LANGUAGE, TARGET_LANGUAGE):
        if language not in pair:
            raise record_error(where, index, f"'translation' has no {language!r} text (keys: {sorted(pair)})")
        if not isinstance(pair[language], str):
            raise record_error(where, index, f"'translation.{language}' must be a string, "
                                             f"got {type(pair[language]).__name__}")
        out[language] = pair[language]
    return {"translation": out}


def load_local(data_dir, split: str) -> list[dict]:
    """Records of ``split`` from the per-split file in ``data_dir``."""
    check_split(split, "WMT16")
    return [normalise_record(x.record, x.where, x.index)
            for x in read_split(data_dir, split, LOCAL_SUBFOLDERS, "WMT16 en-ro")]


def load_hub(hub_id: str, config: str, revision: str | None, split: str) -> list[dict]:
    """Records of ``split`` from a Hugging Face data set (or a local folder in the hub layout).

    Any failure to get the data (offline, unknown id, config or revision, missing
    split, ...) becomes one :class:`HarnessError` line that points to local files instead.
    """
    check_split(split, "WMT16")
    rows = hub_rows("WMT16", hub_id, revision, split,
                    f"local files (train/validation/test as .jsonl, .json or .parquet of {_SHAPE} records)",
                    config=config)
    return [normalise_record(row, f"{hub_id}/{config} [{split}]", i) for i, row in enumerate(rows)]


def records_to_examples(records: Iterable[dict], split: str, id_prefix: str = "wmt16") -> list[Example]:
    """One example per sentence pair: ``T5_PREFIX`` + English → Romanian (the only reference).

    Whitespace at the ends is stripped; pairs with an empty side are skipped and counted.
    """
    check_split(split, "WMT16")
    examples, skipped = [], 0
    for i, record in enumerate(records):
        pair = record["translation"]
        source, target = pair[SOURCE_LANGUAGE].strip(), pair[TARGET_LANGUAGE].strip()
        if not source or not target:
            skipped += 1
            continue
        examples.append(Example(id=f"{id_prefix}-{split}-{i}", source=T5_PREFIX + source, target=target,
                                references=(target,)))
    if skipped:
        log.warning("WMT16 %s: skipped %d pair(s) with an empty side", split, skipped)
    return examples

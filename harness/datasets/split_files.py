"""Per-split record files in a folder: JSON lines, JSON, CSV or parquet (hub shards included).

Data sets distributed as one table per split — XSum's ``{document, summary, id}``,
WMT's ``{translation: {en, ro}}`` — are found in a ``--data-dir`` folder under the
names a user is likely to have: their own export (``train.jsonl``, ``validation.json``,
``test.parquet``, what ``Dataset.to_json``/``to_parquet`` write) or a copy of the
hub's files (``train-00000-of-00001.parquet`` shards, possibly inside a config or
``data`` sub-folder, or ``default/train/0000.parquet`` from ``refs/convert/parquet``).

This module only finds and parses files; the task validates each record. A record
comes back with where it came from (file, index within the file), so a task's error
names the file and the first bad record. Every problem is one :class:`HarnessError` line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from harness.errors import HarnessError

from .release import one_line, read_text

SINGLE_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True)
class Located:
    """A raw record and where it was read: ``where`` (the file) and its 0-based ``index`` there."""

    where: str
    index: int
    record: Any


def split_file_patterns(split: str, subfolders: Sequence[str] = ()) -> list[str]:
    """Glob patterns (relative to the data folder) that hold ``split``, most specific first.

    A pattern matches one file (``train.jsonl``) or the shards of one table
    (``train-*.parquet``, ``default/train/*.parquet``).
    """
    patterns = [f"{split}{suffix}" for suffix in SINGLE_FILE_SUFFIXES]
    patterns.append(f"{split}-*.parquet")
    for sub in subfolders:
        patterns += [f"{sub}/{split}{suffix}" for suffix in SINGLE_FILE_SUFFIXES]
        patterns += [f"{sub}/{split}-*.parquet", f"{sub}/{split}/*.parquet"]
    return patterns


def find_split_files(data_dir: Path, split: str, subfolders: Sequence[str], what: str) -> list[Path]:
    """The file(s) of ``split`` in ``data_dir``: one file, or the shards of one table (sorted).

    ``what`` names the data set in messages (e.g. "XSum"). Raises when the folder is
    missing, when nothing matches (listing the accepted names) or when several
    patterns match (two copies of a split would be silently mixed otherwise).
    """
    patterns = split_file_patterns(split, subfolders)
    accepted = ", ".join(patterns)
    if not data_dir.is_dir():
        raise HarnessError(f"{what} data directory {data_dir} does not exist; it must hold one file per split "
                           f"(for {split}: one of {accepted})")
    found = {p: sorted(x for x in data_dir.glob(p) if x.is_file()) for p in patterns}
    found = {p: files for p, files in found.items() if files}
    if not found:
        raise HarnessError(f"{what} {split} file not found in {data_dir}: expected one of {accepted}")
    if len(found) > 1:
        names = ", ".join(str(files[0].relative_to(data_dir)) for files in found.values())
        raise HarnessError(f"{what} {split}: several candidate files in {data_dir} ({names}); keep one")
    return next(iter(found.values()))


def _json_lines(path: Path, text: str) -> list[Any]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise HarnessError(f"{path}: line {number} is not valid JSON ({err.msg} at column {err.colno})") from None
    return records


def _json(path: Path, text: str) -> list[Any]:
    """A JSON list of records, or JSON lines (``Dataset.to_json`` writes lines even into ``.json``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":
            return _json_lines(path, text)
        raise HarnessError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if isinstance(data, dict):
        return [data]  # a file holding one record (JSON lines with a single line)
    if not isinstance(data, list):
        raise HarnessError(f"{path}: expected a JSON list of records or one record per line, "
                           f"got a JSON {type(data).__name__}")
    return data


def _csv(path: Path, text: str) -> list[Any]:
    """CSV with a header row; a row with more or fewer cells than the header is an error naming its line."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    records = []
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            raise HarnessError(f"{path}: line {reader.line_num} does not have the header's "
                               f"{len(reader.fieldnames or [])} cells")
        records.append(row)
    return records


def _parquet(path: Path) -> list[Any]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for an unreadable file
        raise HarnessError(f"{path}: not a readable parquet file ({one_line(err)})") from None


def read_records(path: Path) -> list[Any]:
    """The raw records of one file, by its suffix (``.jsonl``, ``.json``, ``.csv``, ``.parquet``)."""
    if path.suffix == ".parquet":
        records = _parquet(path)
    else:
        text = read_text(path)
        if not text.strip():
            raise HarnessError(f"{path}: file is empty")
        parse = {".jsonl": _json_lines, ".csv": _csv}.get(path.suffix, _json)
        records = parse(path, text)
    if not records:
        raise HarnessError(f"{path}: contains no records")
    return records


def read_split(data_dir, split: str, subfolders: Sequence[str], what: str) -> Iterator[Located]:
    """Every raw record of ``split`` in ``data_dir``, with its location (see :func:`find_split_files`)."""
    if data_dir is None or str(data_dir) == "":
        raise HarnessError(f"no {what} data directory given: --data-dir DIR (or --set data.data_dir=DIR)")
    for path in find_split_files(Path(data_dir).expanduser(), split, subfolders, what):
        for index, record in enumerate(read_records(path)):
            yield Located(str(path), index, record)

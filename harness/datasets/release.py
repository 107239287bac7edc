"""Reading a data set's release files: one JSON file per split, named by the release.

DART and Commonsense-Dialogues ship one JSON file per split (a list of records, or an
object of id → record). This module finds the file of a split in a ``--data-dir``
folder and reads it; the task validates each record. Every problem is one
:class:`HarnessError` line that names the file; the small helpers here (split check,
short reprs, one-line exception text) are the ones every task's reader uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from harness.errors import HarnessError
from harness.task import SPLITS


def check_split(split: str, what: str) -> None:
    """``split`` is one of the harness's splits; ``what`` names the data set in the message."""
    if split not in SPLITS:
        raise HarnessError(f"unknown {what} split {split!r}; expected one of {', '.join(SPLITS)}")


def record_error(where: str, index: int, what: str) -> HarnessError:
    """The error for record ``index`` of ``where`` (a file or a hub data set)."""
    return HarnessError(f"{where}: record {index}: {what}")


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (for quoting a bad value in one line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(err: BaseException, limit: int = 200) -> str:
    """A short one-line description of an exception (for "could not load ..." messages)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type ("object", "array", ...)."""
    return {dict: "object", list: "array", str: "string", int: "number", float: "number",
            bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)


def read_text(path: Path) -> str:
    """The UTF-8 text of the file ``path``, without a byte-order mark (spreadsheets save CSV with one, and it
    would glue itself invisibly to the first field's name)."""
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "file not found"
        raise HarnessError(f"{path}: {what}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise HarnessError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise HarnessError(f"{path}: cannot read ({err.strerror or err})") from None


def parse_json(path: Path, text: str) -> Any:
    """``text`` (read from ``path``) parsed as one JSON value."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise HarnessError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None


def read_json(path, container: type, expected: str, example: str = "", nothing: str = "records") -> list | dict:
    """The non-empty JSON ``container`` (``list`` or ``dict``) in the file ``path``.

    ``expected`` says what the file holds ("a JSON list of DART records"), ``example``
    optionally shows it, ``nothing`` names its items for an empty file's message.
    """
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise HarnessError(f"{path}: file is empty (expected {expected})")
    data = parse_json(path, text)
    if not isinstance(data, container):
        shown = f" ({example})" if example else ""
        raise HarnessError(f"{path}: expected {expected}{shown}, got a JSON {json_type(data)}")
    if not data:
        raise HarnessError(f"{path}: contains no {nothing} (an empty JSON {json_type(data)})")
    return data


def release_file(data_dir, split: str, files: Mapping[str, str], what: str) -> Path:
    """The release file of ``split`` in ``data_dir`` (``files``: split → file name), which must exist."""
    check_split(split, what)
    expected = ", ".join(files.values())
    if data_dir is None or str(data_dir) == "":
        raise HarnessError(f"no {what} data directory given (data.data_dir); it must hold {expected}")
    data_dir = Path(data_dir).expanduser()
    path = data_dir / files[split]
    if not data_dir.is_dir():
        raise HarnessError(f"{what} data directory {data_dir} does not exist; expected {path} "
                           f"(the release files are {expected})")
    if not path.is_file():
        raise HarnessError(f"{what} {split} file not found: expected {path} "
                           f"(the release files are {expected})")
    return path

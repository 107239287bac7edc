"""A small TOML writer for nested mappings of scalars (``harness config --format toml``).

TOML has no null: keys whose value is None are left out and named in a ``# unset:`` comment of
their table, so a reader sees every key. ``tomllib`` (the standard library) reads the output back.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    # JSON's escapes are TOML's; TOML also wants DEL escaped, and no surrogate escapes (ensure_ascii off).
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__} {value!r}")


def dumps(data: Mapping[str, Any], notes: Mapping[str, str] | None = None) -> str:
    """``data`` as a TOML document: scalars first, then one ``[table]`` per nested mapping (dotted headers).
    ``notes``: dotted key → a comment written after that key's value (e.g. why it is unused)."""
    lines: list[str] = []
    notes = notes or {}

    def table(mapping: Mapping[str, Any], path: list[str]) -> None:
        if path:
            lines.extend(["", "[" + ".".join(_key(p) for p in path) + "]"])
        unset = [k for k, v in mapping.items() if v is None]
        if unset:
            lines.append("# unset: " + ", ".join(unset))
        for name, value in mapping.items():
            if value is not None and not isinstance(value, Mapping):
                note = notes.get(".".join([*path, name]))
                lines.append(f"{_key(name)} = {_value(value)}" + (f"  # unused: {note}" if note else ""))
        for name, value in mapping.items():
            if isinstance(value, Mapping):
                table(value, [*path, name])

    table(data, [])
    return "\n".join(lines).lstrip("\n") + "\n"

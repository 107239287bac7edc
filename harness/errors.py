"""The errors a user sees: the CLI prints each on one line and exits 2."""

from __future__ import annotations

import difflib


class HarnessError(Exception):
    """An error in the user's input: the CLI prints it on one line and exits 2."""

    exit_code = 2


class RunFailed(HarnessError):
    """A run that started and failed (a NaN loss, out of memory, a bug): one line naming its failure record
    (``RESULTS/failed/<run_id>.json``, traceback included) and exit 1, as a failed grid cell."""

    exit_code = 1


class DiskFullError(HarnessError):
    """No space left while writing results or the stage cache: nothing half-written, re-run to finish."""


class UnknownNameError(HarnessError, KeyError):
    def __init__(self, kind: str, name: str, known: list[str]):
        hint = difflib.get_close_matches(name, known, n=1)
        msg = f"unknown {kind} {name!r}"
        if hint:
            msg += f" (did you mean {hint[0]!r}?)"
        msg += f"; known {kind}s: {', '.join(sorted(known)) or '(none)'}"
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]

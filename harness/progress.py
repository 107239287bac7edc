"""Progress of long loops: a bar on a terminal, a line now and then elsewhere.

tqdm redraws its bar with carriage returns, which fill a log file or a CI transcript
with kilobytes of half-lines. When stderr is not a terminal, :func:`progress` gives
an object with the same calls that prints one plain line at most every
``PLAIN_EVERY_S`` seconds (and at the end).
"""

from __future__ import annotations

import sys
import time
from typing import Iterable

PLAIN_EVERY_S = 30.0


class _PlainProgress:
    """The calls of a tqdm bar that the harness uses, as periodic plain lines on stderr."""

    def __init__(self, iterable=None, total=None, initial=0, desc="", unit="it", disable=False, **_ignored):
        self.iterable, self.total, self.n, self.desc, self.unit = iterable, total, initial, desc, unit
        self.disable = disable
        self.postfix, self.start, self.last = "", time.time(), time.time()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.time() - self.last >= PLAIN_EVERY_S and not self.disable:
            self._line()

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.n and not self.disable:
            self._line()
        self.n = 0

    def _line(self) -> None:
        self.last = time.time()
        of = f"/{self.total}" if self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"[{self.desc}] {self.n}{of} {self.unit}, {self.last - self.start:.0f}s{extra}", file=sys.stderr,
              flush=True)


def progress(iterable: Iterable | None = None, **kwargs):
    """A tqdm bar (``leave=False``, to stderr) on a terminal; periodic plain lines otherwise."""
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, **{"leave": False, "dynamic_ncols": True, "file": sys.stderr, **kwargs})
    return _PlainProgress(iterable, **kwargs)


def note(message: str) -> None:
    """A line between progress updates (does not break a bar that is being drawn)."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)

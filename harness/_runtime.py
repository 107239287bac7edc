"""Process-wide settings that the CLI and grid workers apply at start (never ``import harness``).

glibc gives freed heap memory back to the OS eagerly and faults it in again on the
next allocation. Training small models allocates and frees many medium-sized
tensors per step, so on machines where page faults are expensive (virtual machines,
sandboxes) most of the time went into the kernel: a BART forward pass of batch 64
took 1.19 s instead of 0.06 s on a 2-core VM. Keeping 256 MiB of slack at the top
of the heap (M_TOP_PAD) removes that cost; it changes nothing else.
Set HARNESS_NO_MALLOPT=1 to skip it (an environment switch, read by :func:`env_flag`: 0 leaves it on).
A library user who trains in their own process gets the same speed by calling
:func:`tune_allocator` once at start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

from .errors import HarnessError

M_TOP_PAD = -2
ON, OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def launched_processes() -> int:
    """The process count a launcher put in this process's environment (``WORLD_SIZE``; 1 when there is none).
    Here, not in :mod:`harness.distributed`, so that the CLI reads it without importing torch."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def env_flag(name: str) -> bool:
    """An environment switch, read one way for all: 1, true, yes, on (any case) turn it on; unset, empty, 0,
    false, no, off leave it off; anything else is a one-line error (a typo must not read as on)."""
    value = os.environ.get(name, "").strip().lower()
    if value in ON:
        return True
    if value in OFF:
        return False
    raise HarnessError(f"{name}={os.environ[name]!r}: expected one of {', '.join(ON)} (on) or "
                       f"{', '.join(v for v in OFF if v)} (off)")


def tune_allocator(top_pad: int = 256 << 20) -> bool:
    if not sys.platform.startswith("linux") or env_flag("HARNESS_NO_MALLOPT"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_TOP_PAD, top_pad))
    except (OSError, AttributeError):  # not glibc (musl, …): nothing to tune
        return False

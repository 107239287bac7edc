"""Atomic, checksummed writes: a killed run never leaves a file that looks complete.

Temporary folders carry the pid and host of the process that made them
(``.NAME.tmp-PID@HOST-XXXX``), so that :func:`sweep_stale` can remove the ones whose
process is gone (killed with ``kill -9``) without touching those of live writers.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


# errno values that mean "no space left": a full disk, or a full quota.
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in _NO_SPACE


def disk_full_error(err: OSError, path: Path):
    """The one-line :class:`DiskFullError` for ``err`` raised while writing ``path``."""
    from ..errors import DiskFullError

    free = ""
    try:
        free = f" ({shutil.disk_usage(Path(path).parent).free / 2**20:.0f} MiB free now)"
    except OSError:
        pass
    return DiskFullError(f"disk full while writing {path}{free}: nothing was half-written and results written "
                         f"before are intact; free some space (or point --results-dir elsewhere) and run the same "
                         f"command again to finish what is missing")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (relative paths), skipping the stage record itself."""
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != STAGE_RECORD}


STAGE_RECORD = "stage.json"


def check_writable_folder(path: str | Path, option: str) -> None:
    """A one-line :class:`HarnessError` unless ``path`` is a folder this process can write, or can be created
    as one (checked before any work; nothing is left behind: a probe file in the nearest existing folder is
    removed at once)."""
    from ..errors import HarnessError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HarnessError(f"{option} {path}: exists and is not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise HarnessError(f"{option} {path}: {existing} is not a folder")
    try:   # access() alone misses a read-only file system when running as root
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "no permission")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        reason = "a read-only file system" if err.errno == errno.EROFS else (err.strerror or type(err).__name__)
        raise HarnessError(f"{option} {path}: {existing} is not writable ({reason}); choose another folder") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _readable(path: Path, directory: bool = False) -> None:
    """The mode an ordinary file or folder gets (0644 / 0755 under the usual umask): temporary files and
    folders are private (0600 / 0700), and a results folder shared by users or Ray nodes must be readable."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final`` to write; on success it replaces ``final`` in one rename.

    On any exception the temporary file is removed and ``final`` is left as it was; a
    full disk becomes the one-line :class:`DiskFullError`.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        _readable(Path(tmp))
        os.replace(tmp, final)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err):
            raise disk_full_error(err, final) from err
        raise


def write_json(path: Path, obj, *, indent: int = 2) -> None:
    """Write JSON through a temporary file in the same folder, synced, then renamed (atomic on POSIX)."""
    with atomic_file(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=indent, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())


def _owner() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


# .NAME.tmp-PID@HOST-RANDOM  (mkdtemp's random part has no '-')
_OWNED = re.compile(r"^\..+\.(?:tmp|old)-(?P<pid>\d+)@(?P<host>.+)-[^-]+$")


@contextmanager
def atomic_dir(final: Path, temp_root: Path | None = None) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``final`` in one rename.

    The temporary folder lives in ``temp_root`` (default: next to ``final``; it must be
    on the same file system), so a reader that lists ``final.parent`` only ever sees
    complete folders when ``temp_root`` is elsewhere. On any exception the temporary
    folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    root = Path(temp_root) if temp_root is not None else final.parent
    final.parent.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}.tmp-{_owner()}-"))
    try:
        yield tmp
        _readable(tmp, directory=True)
        if final.exists():
            old = root / f".{final.name}.old-{_owner()}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(err):   # e.g. a model or parquet file written inside the folder
            raise disk_full_error(err, final) from err
        raise


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by someone else
        return True
    return True


def sweep_stale(folder: Path) -> list[Path]:
    """Remove temporary folders in ``folder`` left by dead processes of this host; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, removed = socket.gethostname(), []
    for entry in folder.iterdir():
        match = _OWNED.match(entry.name)
        if match and match["host"] == host and not pid_alive(int(match["pid"])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed

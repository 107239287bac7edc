"""A results folder's sentence statistics: ``RESULTS/cache/statistics/<xx>/<sha256>.json``.

sacreBLEU's per-sentence statistics of a run's outputs (TER's edit distances the costly ones), which a report
recomputes corpus scores from on every bootstrap draw. Not a stage: derived from the runs' examples, each file
named by the sha256 of what made it (metric, signature, sacreBLEU's version, outputs, references), so a file is
only ever the statistics of its inputs, and a file another sacreBLEU version would compute is never read.
:mod:`harness.reporting.stats` reads and writes them; a reference bundle ships them (:mod:`.bundle`).

(Kept out of :mod:`.io`: that module is on every stage's code path, and a stage's key holds the digest of each
module on it.)
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

STATISTICS = ("cache", "statistics")
#: A statistics file's path below the folder (a half-written temporary file does not match).
STATISTICS_FILE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.json$")


def statistics_file(folder: Path, metric: str, signature: str, hypotheses, references) -> Path:
    """Where the statistics of ``hypotheses`` against ``references`` under ``metric`` and ``signature`` live."""
    import sacrebleu

    text = json.dumps([metric, signature, sacrebleu.__version__, list(hypotheses), [list(r) for r in references]])
    key = hashlib.sha256(text.encode()).hexdigest()
    return folder / key[:2] / f"{key}.json"


def read_statistics(path: Path, n: int) -> list | None:
    """The statistics of ``n`` sentences in ``path``; None when it is missing or cannot be read back as such."""
    try:
        stats = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stats if isinstance(stats, list) and len(stats) == n else None


def write_statistics(path: Path, stats) -> None:
    """Write ``stats`` to ``path`` atomically; a folder that cannot take it (read-only, full) is left as it was."""
    from ..errors import HarnessError
    from .io import atomic_file

    try:
        with atomic_file(path) as tmp:   # a temporary file next to it, renamed; removed if anything fails
            tmp.write_text(json.dumps(stats))
    except (OSError, TypeError, ValueError, HarnessError):
        pass   # they stay in memory


def statistics_files(root: Path) -> list[str]:
    """The statistics files of the results folder ``root`` (relative to it; temporary files left out)."""
    folder = Path(root).joinpath(*STATISTICS)
    if not folder.is_dir():
        return []
    return sorted(path.relative_to(root).as_posix() for path in folder.rglob("*.json")
                  if STATISTICS_FILE.match(path.relative_to(folder).as_posix()))


def is_statistics_file(name: str) -> bool:
    """Whether ``name`` (relative to a results folder) is a statistics file."""
    parts = name.split("/")
    return tuple(parts[:2]) == STATISTICS and STATISTICS_FILE.match("/".join(parts[2:])) is not None

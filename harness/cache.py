"""The stage cache: each pipeline stage is stored under a hash of its config and its inputs.

``results/cache/<stage>/<key>/`` holds a stage's files and ``stage.json`` (its
config, its upstream keys, checksums of its files, how long it took). A folder
only appears under its final name once complete, so a killed build leaves nothing
that could be mistaken for a finished stage; a folder whose files no longer match
their checksums is reported and rebuilt.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import canonical_json
from .io import STAGE_RECORD, atomic_dir, checksums, write_json

# Bump a stage's version when its code changes what it produces: old entries stop matching.
STAGE_VERSIONS = {"tokenizer": 1, "teacher": 1, "pseudo_labels": 1, "predistill": 1, "student": 1, "evaluation": 1}


def stage_key(stage: str, config: Any, upstream: dict[str, str]) -> str:
    payload = canonical_json({"stage": stage, "version": STAGE_VERSIONS.get(stage, 1),
                              "config": config, "upstream": upstream})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class StageResult:
    stage: str
    key: str
    path: Path
    reused: bool
    seconds: float          # time spent now (≈0 when reused)
    record: dict


class StageCache:
    def __init__(self, root: Path, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)):
        self.root = Path(root)
        self.log = log

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def _valid(self, path: Path) -> dict | None:
        import json

        record_file = path / STAGE_RECORD
        if not record_file.is_file():
            return None
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            return None
        if checksums(path) != record.get("checksums"):
            self.log(f"[cache] {path} does not match the checksums recorded when it was written: rebuilding it")
            return None
        return record

    def get_or_build(self, stage: str, config: Any, upstream: dict[str, str],
                     build: Callable[[Path], dict | None], label: str | None = None) -> StageResult:
        """Reuse ``stage`` for this config and upstream if a complete copy exists, else ``build(tmp_dir)``."""
        key = stage_key(stage, config, upstream)
        path = self.path(stage, key)
        label = label or stage
        if path.exists():
            record = self._valid(path)
            if record is not None:
                self.log(f"[{label}] reusing cached {stage} {key} ({path})")
                return StageResult(stage, key, path, True, 0.0, record)
            shutil.rmtree(path, ignore_errors=True)
        self.log(f"[{label}] building {stage} {key}")
        start = time.time()
        with atomic_dir(path) as tmp:
            info = build(tmp) or {}
            seconds = time.time() - start
            record = {"stage": stage, "key": key, "config": config, "upstream": upstream,
                      "seconds": round(seconds, 3), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      "info": info, "checksums": checksums(tmp)}
            write_json(tmp / STAGE_RECORD, record)
        self.log(f"[{label}] done in {seconds:.1f}s")
        return StageResult(stage, key, path, False, seconds, record)

"""The stage cache: each pipeline stage is stored under a hash of its config and its inputs.

``results/cache/<stage>/<key>/`` holds a stage's files and ``stage.json`` (its
config, its upstream keys, checksums of its files, how long it took and what it
computed). A folder only appears under its final name once complete, so a killed
build leaves nothing that could be mistaken for a finished stage; a folder whose
files no longer match their checksums is reported and rebuilt.

Several processes may share one cache (grid workers, Ray tasks, two runners):
a build holds the lock ``<stage>/.<key>.lock`` so that a stage is built once while
the others wait for it and then reuse it. Locks are ``flock`` locks, released by
the operating system when their process dies. While a stage builds, training keeps
resumable checkpoints in ``<stage>/<key>.partial/`` (:mod:`harness.store.checkpoints`); a
build of the same key after a crash resumes from them, and the folder is removed
once the stage is complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock, Timeout

from ..accounting import ComputeMeter
from .checkpoints import TrainingCheckpoints
from ..config import canonical_json
from ..identity import digest as code_digest
from ..identity import library_changes, library_versions
from .io import STAGE_RECORD, atomic_dir, checksums, write_json

def stage_key(stage: str, config: Any, upstream: dict[str, str], code: dict[str, str] | None = None) -> str:
    """The cache key of a stage: a hash of its config, its upstream keys and the code it runs
    (:func:`harness.identity.code_identity`; None: a key of config and inputs only)."""
    payload = {"stage": stage, "config": config, "upstream": upstream}
    if code is not None:
        payload["code"] = code_digest(code)
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]


def build_host() -> dict:
    """What a stage was built on beyond its key: on CPU the numbers depend on the processor and on torch's thread
    count (a matrix product splits its sums differently), so equal keys built elsewhere may differ in the last bits;
    so may other versions of torch, transformers or tokenizers (recorded, not keyed: :mod:`harness.identity`)."""
    import platform

    import torch

    return {"processor": _processor_name() or platform.machine(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "libraries": library_versions()}


def _processor_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


@dataclass
class StageResult:
    stage: str
    key: str
    path: Path
    reused: bool
    seconds: float          # time spent now (≈0 when reused)
    record: dict
    wait_seconds: float = 0.0   # time spent waiting for another process building the same key


@dataclass
class Build:
    """The stage build in progress: where its training checkpoints go."""

    stage: str
    key: str
    label: str
    partial: Path
    checkpoints: list[TrainingCheckpoints] = field(default_factory=list)

    def resumed_from(self) -> int | None:
        """The step training resumed from, if this build went on from a checkpoint."""
        steps = [c.resumed_from for c in self.checkpoints if c.resumed_from is not None]
        return max(steps) if steps else None


class StageCache:
    def __init__(self, root: Path, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
                 meter: ComputeMeter | None = None):
        self.root = Path(root)
        self.log = log
        self.meter = meter or ComputeMeter()
        self.building: Build | None = None

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def partial_path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.partial"

    def lock_path(self, stage: str, key: str) -> Path:
        return self.root / stage / f".{key}.lock"

    def _valid(self, path: Path) -> dict | None:
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

    def checkpoints(self, every: int) -> TrainingCheckpoints | None:
        """Resumable checkpoints for training inside the current build (None: ``every`` <= 0 or no build)."""
        if every <= 0 or self.building is None:
            return None
        checkpoints = TrainingCheckpoints(self.building.partial, every)
        self.building.checkpoints.append(checkpoints)
        return checkpoints

    def probe(self, stage: str, config: Any, upstream: dict[str, str], code: dict[str, str] | None = None
              ) -> StageResult:
        """Key and path of a stage, and whether a complete copy exists (``reused``); builds nothing.

        Completeness is judged by the stage record (checksums are checked at use, not here).
        """
        key = stage_key(stage, config, upstream, code)
        path = self.path(stage, key)
        record = {}
        if (path / STAGE_RECORD).is_file():
            try:
                record = json.loads((path / STAGE_RECORD).read_text())
            except (OSError, ValueError):
                record = {}
        return StageResult(stage, key, path, bool(record), 0.0, record)

    def get_or_build(self, stage: str, config: Any, upstream: dict[str, str],
                     build: Callable[[Path], dict | None], label: str | None = None,
                     code: dict[str, str] | None = None) -> StageResult:
        """Reuse ``stage`` for this config, upstream and code if a complete copy exists, else ``build(tmp_dir)``."""
        key = stage_key(stage, config, upstream, code)
        path = self.path(stage, key)
        label = label or stage
        lock = FileLock(str(self.lock_path(stage, key)))
        path.parent.mkdir(parents=True, exist_ok=True)
        waited = time.time()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.log(f"[{label}] waiting for another process that is building {stage} {key}")
            lock.acquire()
        waited = time.time() - waited
        try:
            if path.exists():
                record = self._valid(path)
                if record is not None:
                    changes = library_changes((record.get("host") or {}).get("libraries"))
                    other = f"; built with other libraries: {', '.join(changes)}" if changes else ""
                    self.log(f"[{label}] reusing cached {stage} {key} ({path}){other}")
                    return StageResult(stage, key, path, True, 0.0, record, waited)
                shutil.rmtree(path, ignore_errors=True)
            return self._build(stage, key, config, upstream, build, label, waited, code)
        finally:
            lock.release()

    def changed_code(self, stage: str, config: Any, upstream: dict[str, str], code: dict[str, str]) -> list[str]:
        """The modules whose code differs from an entry of this stage with the same config and inputs
        (empty when there is none): why a stage that was built before is built again."""
        same = stage_key(stage, config, upstream)
        for record_file in sorted((self.root / stage).glob(f"*/{STAGE_RECORD}")):
            try:
                record = json.loads(record_file.read_text())
            except (OSError, ValueError):
                continue
            if record.get("config_key") == same and record.get("code") not in (None, code):
                old = record["code"]
                return sorted(m for m in set(old) | set(code) if old.get(m) != code.get(m))
        return []

    def _build(self, stage, key, config, upstream, build, label, waited, code=None) -> StageResult:
        path, partial = self.path(stage, key), self.partial_path(stage, key)
        changed = self.changed_code(stage, config, upstream, code) if code is not None else []
        why = f" (its code changed since the last build: {', '.join(changed)})" if changed else ""
        self.log(f"[{label}] building {stage} {key}{why}")
        start = time.time()
        self.building = Build(stage, key, label, partial)
        try:
            with atomic_dir(path) as tmp:
                with self.meter.measure() as compute:
                    info = build(tmp) or {}
                seconds = time.time() - start
                record = {"stage": stage, "key": key, "config": config, "upstream": upstream, "code": code,
                          "config_key": stage_key(stage, config, upstream),
                          "seconds": round(seconds, 3), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                          "info": info, "compute": compute.as_dict(), "resumed_from_step": self.building.resumed_from(),
                          "host": build_host(),
                          "checksums": checksums(tmp)}
                write_json(tmp / STAGE_RECORD, record)
        finally:
            self.building = None
        shutil.rmtree(partial, ignore_errors=True)
        self.log(f"[{label}] done in {seconds:.1f}s")
        return StageResult(stage, key, path, False, seconds, record, waited)

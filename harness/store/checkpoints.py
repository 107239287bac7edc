"""Resumable training state of one stage build.

While a stage builds, :func:`harness.train.train` saves everything needed to go on
exactly where it stopped — model, optimizer, scheduler, torch RNG states, step,
epoch, position in the epoch's shuffled order, curves and the best checkpoint so
far — into the stage key's *partial* folder (``cache/<stage>/<key>.partial/``). The
next build of the same key resumes from it; the cache removes the folder once the
stage is complete. Only one process builds a key at a time (the stage lock), so the
folder has one writer.

``train_state.pt`` is replaced atomically (temporary file, then rename); next to it,
``progress.json`` says how far it got without loading the state, and the state's sha256,
checked before the state is loaded (``torch.load`` with ``weights_only=True``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .io import disk_full_error, is_disk_full, sha256_file, write_json

STATE_FILE = "train_state.pt"
PROGRESS_FILE = "progress.json"


@dataclass
class TrainingCheckpoints:
    folder: Path
    every: int                 # save every this many optimizer steps (> 0)
    resumed_from: int | None = None   # set by :meth:`load` when a state was found

    def __post_init__(self):
        self.folder = Path(self.folder)
        if self.every <= 0:
            raise ValueError(f"checkpoint interval must be positive, got {self.every}")

    def due(self, step: int, total: int) -> bool:
        return step % self.every == 0 and step < total

    def load(self, fingerprint: dict, device) -> dict | None:
        """The saved state if it belongs to this very training run (same ``fingerprint``), else None."""
        path = self.folder / STATE_FILE
        if not path.is_file():
            return None
        recorded = (read_progress(self.folder) or {}).get("sha256")
        if recorded is not None and sha256_file(path) != recorded:
            print(f"[checkpoint] ignoring {path}: it does not match the checksum recorded when it was saved "
                  f"(truncated or changed); this stage trains from the start", file=sys.stderr)
            return None
        try:
            state = torch.load(path, map_location=device, weights_only=True)
        except Exception as err:  # a state we cannot read is worth less than the time spent on it
            print(f"[checkpoint] ignoring unreadable {path}: {type(err).__name__}: {err}", file=sys.stderr)
            return None
        if state.get("fingerprint") != fingerprint:
            print(f"[checkpoint] ignoring {path}: it was saved by a different training run", file=sys.stderr)
            return None
        self.resumed_from = int(state["step"])
        return state

    def save(self, state: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{STATE_FILE}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.folder / STATE_FILE)
        except BaseException as err:
            Path(tmp).unlink(missing_ok=True)   # the previous checkpoint stays as it was
            if is_disk_full(err):
                raise disk_full_error(err, self.folder / STATE_FILE) from err
            raise
        # the state's checksum, checked before it is loaded (killed between the two writes: the old
        # checksum no longer matches, and the stage starts again rather than trust the file)
        write_json(self.folder / PROGRESS_FILE, {"name": state["fingerprint"].get("name"), "step": state["step"],
                                                 "total": state["fingerprint"].get("total"),
                                                 "sha256": sha256_file(self.folder / STATE_FILE)})


def read_progress(folder: Path) -> dict | None:
    """``{"name", "step", "total"}`` of the checkpoint in ``folder``, or None."""
    import json

    try:
        return json.loads((Path(folder) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])

"""One cell of the benchmark: its plan (:mod:`.graph`) walked top to bottom, each stage reused from
the cache or built (:mod:`.stages`), then written as ``results/runs/<run>/`` (:mod:`harness.store.runs`).

Each stage is a pure function of its config and its upstream stages and is cached under a hash of
both (:mod:`harness.store.cache`), so every method of a task reuses one teacher, one set of
pseudo-labels and one pre-distilled student.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from ..accounting import ComputeMeter
from ..config import RunConfig
from ..errors import HarnessError
from ..lm import resolve_device
from ..registry import METHODS, TASKS
from ..store.cache import StageCache, StageResult
from ..store.runs import RunOutcome, RunRecord, write_run
from ..task import Example
from .graph import plan_cell
from .stages import STAGES


def quiet_transformers() -> None:
    """Our own progress bars say what runs; transformers' per-load bars and warnings are noise here."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Pipeline:
    """The running cell: its plan, its data once loaded, and the stages built so far (by label)."""

    def __init__(self, cfg: RunConfig):
        quiet_transformers()
        self.cfg = cfg
        self.task = TASKS.get(cfg.task)(cfg.data)
        self.method = METHODS.get(cfg.method)(cfg.method_params)
        self.device = resolve_device(cfg.device)
        self.plan = plan_cell(cfg, self.task, self.method, self.device.type)
        self.data_key = self.plan.data_key
        self.meter = ComputeMeter()   # forward/generated tokens of teacher and students, per stage build
        self.cache = StageCache(Path(cfg.results_dir) / "cache", log, meter=self.meter)
        self.stages: dict[str, StageResult] = {}
        self.examples: dict[str, list[Example]] = {}
        self.splits = {}

    def load_data(self) -> None:
        """Load and check every split before anything is written."""
        cap = {"train": self.cfg.data.max_train_examples, "validation": self.cfg.data.max_eval_examples,
               "test": self.cfg.data.max_eval_examples}
        for split in ("train", "validation", "test"):
            examples = self.task.load(split)
            if split == "train" and self.cfg.data.train_subset is not None:
                examples = _seeded_subset(examples, self.cfg.data.train_subset, self.cfg.data.seed)
            if cap[split] is not None:
                examples = examples[: cap[split]]
            if not examples:
                raise HarnessError(f"task {self.cfg.task!r}: the {split} split is empty")
            self.examples[split] = examples

    def build(self, label: str) -> StageResult:
        """Reuse or build the stage ``label`` of the plan (its upstream stages must be built), then take
        from it what later stages need."""
        spec = self.plan[label]
        build, use = STAGES[spec.stage]
        result = self.cache.get_or_build(spec.stage, spec.config, spec.upstream, build(self, spec), spec.label,
                                         spec.code)
        self.stages[spec.label] = result
        for alias, target in self.plan.aliases.items():
            if target == spec.label:
                self.stages[alias] = result
        if use is not None:
            use(self, spec, result)
        return result

    def checkpoints(self):
        """Resumable training checkpoints of the stage being built (kept until it completes)."""
        return self.cache.checkpoints(self.cfg.checkpoint_every)

    def run(self) -> RunOutcome:
        start = time.time()
        torch.manual_seed(self.cfg.seed)
        self.load_data()
        for spec in self.plan.specs:
            self.build(spec.label)
        return write_run(RunRecord(
            config=self.cfg, stages=self.stages, evaluated=self.plan.evaluated, upstream_seed=self.plan.upstream_seed,
            truncated={split: {"sources": sp.truncated_sources, "targets": sp.truncated_targets,
                               "examples": len(sp.examples)} for split, sp in self.splits.items()},
            device=str(self.device), wall_seconds=time.time() - start,
            task=self.task.describe(), method=self.method.describe(), data_identity=self.plan.data_identity,
            data_key=self.plan.data_key))


def _seeded_subset(examples: list[Example], size: int, seed: int) -> list[Example]:
    """``size`` training inputs drawn without replacement by ``seed`` (all references of a drawn input kept)."""
    import random

    sources = sorted({e.source for e in examples})
    if size >= len(sources):
        return examples
    keep = set(random.Random(seed).sample(sources, size))
    return [e for e in examples if e.source in keep]

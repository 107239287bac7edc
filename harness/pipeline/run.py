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
from ..datasets.sampling import describe_draw, draw_examples
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
        self.method.check_token_loss()   # the plugin's loss on tiny tensors, before any data or model loads
        self.device = resolve_device(cfg.device)
        self.plan = plan_cell(cfg, self.task, self.method, self.device.type)
        self.data_key = self.plan.data_key
        self.meter = ComputeMeter()   # forward/generated tokens of teacher and students, per stage build
        self.cache = StageCache(Path(cfg.results_dir) / "cache", log, meter=self.meter)
        self.stages: dict[str, StageResult] = {}
        self.examples: dict[str, list[Example]] = {}
        self.drawn: dict[str, dict] = {}   # split → what its examples are (sampling.describe_draw)
        self.splits = {}

    def load_data(self) -> None:
        """Load and check every split before anything is written; a capped split keeps the examples of a seeded
        sample of its inputs, stratified by source where the task names one (:mod:`harness.datasets.sampling`)."""
        d = self.cfg.data
        caps = {"train": {"inputs": d.train_subset, "rows": d.max_train_examples},
                "validation": {"inputs": d.max_eval_examples}, "test": {"inputs": d.max_eval_examples}}
        for split in ("train", "validation", "test"):
            examples = draw_examples(self.task.load(split), d.seed, **caps[split])
            if not examples:
                raise HarnessError(f"task {self.cfg.task!r}: the {split} split is empty")
            self.examples[split] = examples
            self.drawn[split] = describe_draw(examples)

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
            data_key=self.plan.data_key, drawn=self.drawn))


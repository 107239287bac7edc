"""One cell of the benchmark: its plan (:mod:`.graph`) walked top to bottom, each stage reused from
the cache or built (:mod:`.stages`), then written as ``results/runs/<run>/`` (:mod:`harness.store.runs`).

Each stage is a pure function of its config and its upstream stages (:mod:`.stages`; the data are
drawn by :mod:`.load`) and is cached under a hash of both (:mod:`harness.store.cache`), so every
method of a task reuses one teacher, one set of pseudo-labels and one pre-distilled student.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .. import distributed
from ..accounting import ComputeMeter
from ..config import RunConfig
from ..lm import resolve_device
from ..registry import METHODS, TASKS
from ..store.cache import Build, StageCache, StageResult
from ..store.labels import TOKENIZER
from ..store.runs import RunOutcome, RunRecord, write_run
from .graph import plan_cell
from .load import load_examples
from .stages import DATA, STAGES, StageContext, gather_inputs, keyed


def quiet_transformers() -> None:
    """Our own progress bars say what runs; transformers' per-load bars and warnings are noise here."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Pipeline:
    """The running cell: its plan, and what each stage built so far handed on (by label).

    Each stage is built by a pure function of its keyed config and of what its upstream stages returned
    (:mod:`.stages`): the pipeline gathers those (:func:`~.stages.gather_inputs`) from ``outputs`` and keeps
    what the stage hands on there in turn; ``outputs["data"]`` holds the examples of each split (a stage gets those
    of the splits its key holds)."""

    def __init__(self, cfg: RunConfig, report_to: tuple[str, ...] = ()):
        quiet_transformers()
        self.cfg = cfg
        self.report_to = report_to   # the run's trackers (:mod:`harness.tracking`): no configuration, no key
        self.tracker = None          # a RunTracker while the run reports to some
        self.task = TASKS.get(cfg.task)(cfg.data)
        self.method = METHODS.get(cfg.method)(cfg.method_params)
        self.method.check_token_loss()   # the plugin's loss on tiny tensors, before any data or model loads
        self.device = resolve_device(cfg.device)
        self.plan = plan_cell(cfg, self.task, self.method, self.device.type)
        self.meter = ComputeMeter()   # forward/generated tokens of teacher and students, per stage build
        self.cache = StageCache(Path(cfg.results_dir) / "cache", log, meter=self.meter)
        self.context = StageContext(self.device, self.meter, self.task, self.checkpoints, self.report_curves)
        self.stages: dict[str, StageResult] = {}   # label → the cache's record of the stage
        self.outputs: dict[str, Any] = {}          # label → what the stage handed on ("data": split → examples)
        self.drawn: dict[str, dict] = {}           # split → what its examples are (sampling.describe_draw)

    def load_data(self) -> None:
        """Load and check every split before anything is written (:func:`.load.load_examples`)."""
        self.outputs[DATA], self.drawn = load_examples(self.task, self.cfg.data)

    def build(self, label: str) -> StageResult:
        """Reuse or build the stage ``label`` of the plan (its upstream stages must be built), then keep what it
        hands on to later stages."""
        spec = self.plan[label]
        stage = STAGES[spec.stage]
        view, inputs = keyed(spec), gather_inputs(self.plan, spec, self.outputs)
        if distributed.world_size() > 1:
            result = self.build_parallel(spec, stage, view, inputs)
        else:
            result = self.cache.get_or_build(spec.stage, spec.config, spec.upstream,
                                             stage.build(view, inputs, self.context), spec.label, spec.code)
        if spec.stage == TOKENIZER:   # it hands on every split tokenised; a later stage gets those its key holds
            inputs = replace(inputs, examples=self.outputs[DATA])
        output = result.path if stage.load is None else stage.load(view, inputs, self.context, result.path)
        for name in [spec.label] + [alias for alias, target in self.plan.aliases.items() if target == spec.label]:
            self.stages[name], self.outputs[name] = result, output
        return result

    def build_parallel(self, spec, stage, view, inputs) -> StageResult:
        """A stage among data-parallel processes: rank 0 reuses or builds it through the cache (lock and all); when
        it builds a stage that every rank builds (:attr:`~.stages.Stage.collective`: it trains, or decodes split
        over the ranks) it tells the other ranks, which run the same build alongside it into a scratch folder
        (what they write is dropped); their counted work (:mod:`harness.accounting`) is added to rank 0's record,
        so a stage's tokens are those of the whole group. Every rank then waits for the stage to be complete and
        the others read rank 0's copy."""
        build = stage.build(view, inputs, self.context)
        if distributed.is_writer():
            started = []

            def build_first(out: Path):
                started.append(True)
                if stage.collective:
                    distributed.broadcast_float(1.0)   # the others build alongside
                info = build(out)
                if stage.collective:
                    for counts in distributed.gather_objects(None)[1:]:
                        self.meter.current.add_counts(counts)
                return info

            result = self.cache.get_or_build(spec.stage, spec.config, spec.upstream, build_first, spec.label,
                                             spec.code)
            if stage.collective and not started:
                distributed.broadcast_float(0.0)       # reused: nothing to build
        elif stage.collective and distributed.broadcast_float(0.0) > 0:
            probe = self.cache.probe(spec.stage, spec.config, spec.upstream, spec.code)
            self.cache.building = Build(spec.stage, probe.key, spec.label,
                                        self.cache.partial_path(spec.stage, probe.key))   # its checkpoints: resume
            try:
                with tempfile.TemporaryDirectory(prefix=f"rank{distributed.rank()}-") as scratch, \
                        self.meter.measure() as compute:
                    build(Path(scratch))
            finally:
                self.cache.building = None
            distributed.gather_objects(compute.counts())
        distributed.barrier()
        if distributed.is_writer():
            return result

        def complete(out: Path):
            raise RuntimeError(f"[{spec.label}] rank {distributed.rank()}: rank 0 did not complete this stage")

        log, self.cache.log = self.cache.log, lambda message: None   # rank 0 said what it reused or built
        try:
            return self.cache.get_or_build(spec.stage, spec.config, spec.upstream, complete, spec.label, spec.code)
        finally:
            self.cache.log = log

    def checkpoints(self):
        """Resumable training checkpoints of the stage being built (kept until it completes)."""
        return self.cache.checkpoints(self.cfg.checkpoint_every)

    def report_curves(self, model: str, rows: list[dict]) -> None:
        """Hand a training stage's new curve rows to the run's trackers (none: nothing happens)."""
        if self.tracker is not None:
            self.tracker.log_curves(model, rows)

    def run(self) -> RunOutcome | None:
        """Build (or reuse) every stage and write the run; data parallel: every rank builds, rank 0 writes the run
        (the others return None). With ``report_to``, the run's trackers get its config first, each training
        curve (a stage built now as it trains, a reused one from its record) and its final metrics."""
        start = time.time()
        if self.cfg.processes != distributed.world_size():
            from ..errors import HarnessError

            raise HarnessError(f"processes={self.cfg.processes} but this process group has {distributed.world_size()}: "
                               f"launch data-parallel cells with `harness run --processes N` (or torchrun)")
        if self.report_to:
            from dataclasses import asdict

            from ..store.runs import run_id_for
            from ..tracking import RunTracker

            self.tracker = RunTracker(self.report_to, self.cfg.results_dir,
                                      run_id_for(self.cfg, self.plan.data_identity), asdict(self.cfg), self.device)
        try:
            return self._run(start)
        finally:
            if self.tracker is not None:
                self.tracker.finish()
                self.tracker = None

    def _run(self, start: float) -> RunOutcome | None:
        torch.manual_seed(self.cfg.seed)
        self.load_data()
        for spec in self.plan.specs:
            self.build(spec.label)
        if not distributed.is_writer():
            return None
        splits = self.outputs[TOKENIZER].splits
        outcome = write_run(RunRecord(
            config=self.cfg, stages=self.stages, evaluated=self.plan.evaluated, upstream_seed=self.plan.upstream_seed,
            truncated={split: {"sources": sp.truncated_sources, "targets": sp.truncated_targets,
                               "examples": len(sp.examples)} for split, sp in splits.items()},
            device=str(self.device), wall_seconds=time.time() - start,
            task=self.task.describe(), method=self.method.describe(), data_identity=self.plan.data_identity,
            data_keys=self.plan.data_keys, drawn=self.drawn))
        if self.tracker is not None:
            self.report_reused_curves()
            self.tracker.log_metrics(outcome.metrics)
        return outcome

    def report_reused_curves(self) -> None:
        """The recorded curves of the training stages this run reused from the cache (the ones it built were
        reported as they trained)."""
        import pandas as pd

        for spec in self.plan.specs:
            result = self.stages[spec.label]
            curves = result.path / "curves.parquet"
            if STAGES[spec.stage].trains and result.reused and curves.is_file():
                self.tracker.log_curves(spec.model, pd.read_parquet(curves).to_dict("records"))

"""The training loop around the step (:func:`harness.step.method_loss`); every method, and
the teacher's own fine-tuning, trains here.

:func:`train`: AdamW (or Adafactor), linear warm-up/decay, gradient clipping,
non-finite checks, validation-based checkpoint selection, mixed precision through
Accelerate, and resumable checkpoints (:mod:`harness.store.checkpoints`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import distributed
from .config import DecodeConfig, TrainConfig
from .data import TokenizedSplit, batches, num_batches
from .lm import Seq2SeqLM, embedding_parameters
from .methods.base import Method
from .progress import note, progress
from .step import Collect, collect_prefix, method_loss
from .step.accumulate import accumulated_step, parallel_step
from .store.checkpoints import TrainingCheckpoints, rng_state, set_rng_state


class NonFiniteLoss(RuntimeError):
    def __init__(self, step: int, what: str, values: dict):
        self.step, self.what, self.values = step, what, values
        super().__init__(f"non-finite {what} at step {step}: {values}")


@dataclass
class TrainResult:
    steps: int
    seconds: float
    best_step: int | None
    best_score: float | None
    curves: list[dict] = field(default_factory=list)   # {step, epoch, split, name, value}
    resumed_from: int | None = None    # the step a checkpoint let this run go on from
    skipped_steps: int = 0             # fp16: optimizer steps the gradient scaler skipped on overflow
    processes: int = 1                 # data-parallel processes that trained (each on its shard of every batch)
    rank_seeds: list[int] = field(default_factory=list)   # data parallel: each rank's torch seed (rank_seed)


PRECISIONS = ("no", "fp16", "bf16")


def make_optimizer(params, schedule: TrainConfig):
    if schedule.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=schedule.lr, eps=1e-8, weight_decay=0.0)
    if schedule.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=schedule.lr, scale_parameter=False, relative_step=False, warmup_init=False)
    raise ValueError(f"unknown optimizer {schedule.optimizer!r}; known: adamw, adafactor")


def make_accelerator(device: torch.device, precision: str, **tracking):
    """The Accelerate handle of one training run: mixed precision, loss scaling, clipping; with ``tracking``
    (``log_with``, ``project_dir``), the handle of a run's trackers (:mod:`harness.tracking`).

    Models stay where the caller put them (no device placement, no wrapping): the
    engine calls encoder and decoder separately, so a wrapper's ``forward`` would be
    bypassed anyway. Accelerate keeps one process-wide state; a single process that
    trains stages with another precision or device (a grid runs many cells in one
    process) starts it afresh. Several processes are accepted when they form the
    harness's own process group (:mod:`harness.distributed`: data parallel, the
    gradients summed by :func:`harness.step.accumulate.parallel_step`); the scheduler
    then steps once per optimizer step (``split_batches``: Accelerate would otherwise
    step it once per process, as for a data loader it had enlarged).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    kwargs = dict(cpu=device.type == "cpu", mixed_precision=precision, device_placement=False, **tracking)
    if distributed.world_size() > 1:
        from accelerate.utils import DataLoaderConfiguration

        kwargs["dataloader_config"] = DataLoaderConfiguration(split_batches=True)
    try:
        accelerator = Accelerator(**kwargs)
    except ValueError:    # the process-wide state was made with another precision
        AcceleratorState._reset_state(reset_partial_state=True)
        accelerator = Accelerator(**kwargs)
    if accelerator.num_processes != distributed.world_size():
        raise RuntimeError(f"Accelerate sees {accelerator.num_processes} processes, the harness's process group "
                           f"{distributed.world_size()}: launch a cell's processes with `harness run --processes N` "
                           f"(or torchrun / accelerate launch running `harness run`)")
    if accelerator.device.type != device.type:
        AcceleratorState._reset_state(reset_partial_state=True)
        accelerator = Accelerator(**kwargs)
    return accelerator


@dataclass
class TrainingSetup:
    """What a training run steps with, fixed before its first step."""

    accelerator: object         # accelerate.Accelerator: autocast, backward, clipping, the fp16 loss scaler
    optimizer: object           # AdamW or Adafactor over the parameters that train, wrapped by Accelerate
    scheduler: object           # linear warm-up, then linear decay to 0 at ``total``
    accumulate: int             # micro-batches per optimizer step
    micro_per_epoch: int        # micro-batches in an epoch
    steps_per_epoch: int        # optimizer steps in an epoch (the last may take fewer micro-batches)
    total: int                  # optimizer steps of the whole run
    eval_every: int             # optimizer steps between two validations
    frozen: dict = field(default_factory=dict)   # name → embedding parameter kept fixed during the run


@dataclass
class TrainingState:
    """Where a run stands: all a checkpoint keeps besides the model, optimizer, scheduler and RNG states."""

    step: int = 0                  # optimizer steps done
    epoch: int = 0                 # the epoch under way
    batch_in_epoch: int = 0        # micro-batches of this epoch that the steps done have used
    curves: list = field(default_factory=list)    # {step, epoch, split, name, value}
    best_score: float | None = None   # the best validation score so far (higher is better)
    best_step: int | None = None
    best_state: dict | None = None    # a copy of the model's weights at best_step
    skipped_steps: int = 0         # fp16: optimizer steps the gradient scaler skipped on overflow
    seconds: float = 0.0           # training time before this process started (a resumed run's earlier time)


def train(student: Seq2SeqLM, method: Method, data: TokenizedSplit, schedule: TrainConfig, *,
          teacher: Seq2SeqLM | None = None, sampling: DecodeConfig | None = None, layer_map: dict | None = None,
          validate: Callable[[Seq2SeqLM], float] | None = None, seed: int = 0, device: torch.device | str = "cpu",
          desc: str = "train", checkpoints: TrainingCheckpoints | None = None,
          collect: Collect = collect_prefix, teacher_mode: str = "eval",
          report: Callable[[list[dict]], None] | None = None) -> TrainResult:
    """Train ``student`` on ``data`` with ``method``; keep the best validation checkpoint if asked.

    Steps go through Accelerate (``schedule.precision``: mixed precision, fp16 loss
    scaling, clipping); with ``precision="no"`` a step is plain AdamW on float32.
    ``checkpoints``: save the whole training state every ``checkpoints.every`` steps and,
    if a state of this same run was saved before, go on from it. The data order is a
    function of (seed, epoch) and the RNG state is restored, so a resumed run ends
    exactly where an uninterrupted one would (bit for bit on CPU). ``collect``: the step's
    sampler (:func:`harness.step.method_loss`), passed through unchanged. ``teacher_mode``: the teacher's mode
    while it trains the student ("eval", or "train": dropout on); it is back in eval mode afterwards.
    ``report``: handed each step's new curve rows as they are recorded (a run's trackers, :mod:`harness.tracking`);
    it only reads them.

    Data parallel (a process group of N ranks, :mod:`harness.distributed`): ``schedule.batch_size`` is each
    rank's batch; the global batches of N·b rows come in the one-process order of batch N·b and rank r takes
    its shard of each (:func:`harness.data.shard_rows`); a step's token counts and gradients are summed over
    the ranks (:func:`harness.step.accumulate.parallel_step`), so the weights equal those of one process at
    batch N·b and stay equal on every rank. Rank r draws its dropout and samples from
    :func:`harness.distributed.rank_seed` (rank 0: ``seed``), recorded in the result. The ranks validate together
    (the decoding split over them) and take rank 0's score; rank 0 writes the checkpoints, with every rank's RNG
    state.
    """
    device = torch.device(device)
    processes, rank = distributed.world_size(), distributed.rank()
    torch.manual_seed(distributed.rank_seed(seed, rank))
    model = student.model
    model.train()
    if teacher is not None:   # teacher_mode "train": its dropout on (RunConfig.teacher_mode)
        teacher.model.train(teacher_mode == "train")
    setup = set_up(model, data, schedule, device, processes)
    if schedule.evals_per_epoch <= 0:
        validate = None  # no validation: the last checkpoint is kept
    sampling = sampling or DecodeConfig()
    fingerprint = training_fingerprint(desc, method, data, setup, schedule, seed, processes)
    state = resume(checkpoints, fingerprint, model, setup, device, desc)

    start = time.time()
    bar = progress(total=setup.total, initial=state.step, desc=desc, unit="step", disable=rank > 0)
    while state.step < setup.total:
        micro: list = []
        epoch_batches = batches(data, schedule.batch_size * processes, student.pad_id, shuffle=True,
                                seed=seed * 1000 + state.epoch, sortish=schedule.batching == "sortish",
                                shard=(rank, processes) if processes > 1 else None)
        for index, batch in enumerate(epoch_batches):
            if index < state.batch_in_epoch:
                continue    # used by the steps done before the checkpoint this run resumed from
            micro.append(batch.to(device))
            if len(micro) < setup.accumulate and index + 1 < setup.micro_per_epoch:
                continue    # an optimizer step takes `accumulate` micro-batches (the epoch's last step what is left)
            loss, terms = optimizer_step(setup, state, schedule, method, student, teacher, micro, sampling,
                                         layer_map, collect)
            micro = []
            state.step += 1
            state.batch_in_epoch = index + 1
            position = state.step / setup.steps_per_epoch
            recorded = len(state.curves)
            state.curves.extend(loss_rows(state.step, position, loss, terms))
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if validate is not None and (state.step % setup.eval_every == 0 or state.step == setup.total):
                score = validated(validate, student)
                model.train()
                distributed.check_in_sync(model.parameters(), f"[{desc}] step {state.step}")
                select_checkpoint(state, model, score, position, f"[{desc}] step {state.step}/{setup.total}")
            if report is not None:
                report(state.curves[recorded:])
            if checkpoints is not None and checkpoints.due(state.step, setup.total):
                save(checkpoints, fingerprint, state, model, setup, state.seconds + time.time() - start)
            if state.step >= setup.total:
                break
        state.batch_in_epoch = 0
        state.epoch += 1
    bar.close()
    distributed.check_in_sync(model.parameters(), f"[{desc}] the end of training")

    best_step = keep_selected(model, state, schedule)
    for p in setup.frozen.values():
        p.requires_grad_(True)
    model.eval()
    if teacher is not None:
        teacher.model.eval()
    return TrainResult(state.step, state.seconds + time.time() - start, best_step, state.best_score, state.curves,
                       resumed_from=checkpoints.resumed_from if checkpoints is not None else None,
                       skipped_steps=state.skipped_steps, processes=processes,
                       rank_seeds=[distributed.rank_seed(seed, r) for r in range(processes)] if processes > 1 else [])


# ---------------------------------------------------------------- set-up

def set_up(model: torch.nn.Module, data: TokenizedSplit, schedule: TrainConfig, device: torch.device,
           processes: int = 1) -> TrainingSetup:
    """The run's length in optimizer steps, its frozen embeddings, the Accelerate handle, the optimizer over the
    parameters that train, the warm-up/decay schedule and the validation cadence. ``processes``: data-parallel
    ranks, whose global batch is ``processes · batch_size`` rows."""
    from transformers import get_linear_schedule_with_warmup

    accumulate = schedule.grad_accum_steps
    micro_per_epoch = num_batches(len(data), schedule.batch_size * processes)
    steps_per_epoch = math.ceil(micro_per_epoch / accumulate)   # optimizer steps (the last may take fewer micro-batches)
    total = max(1, math.ceil(schedule.epochs * steps_per_epoch))
    if schedule.max_steps:
        total = min(total, schedule.max_steps)
    frozen = embedding_parameters(model) if schedule.freeze_embeddings else {}
    for p in frozen.values():
        p.requires_grad_(False)
    accelerator = make_accelerator(device, schedule.precision)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], schedule)
    warmup = schedule.warmup_steps if schedule.warmup_steps is not None else int(schedule.warmup_ratio * total)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    eval_every = max(1, round(steps_per_epoch / max(schedule.evals_per_epoch, 1e-9)))
    return TrainingSetup(accelerator, optimizer, scheduler, accumulate, micro_per_epoch, steps_per_epoch, total,
                         eval_every, frozen)


# ---------------------------------------------------------------- resume and save

def training_fingerprint(desc: str, method: Method, data: TokenizedSplit, setup: TrainingSetup,
                         schedule: TrainConfig, seed: int, processes: int = 1) -> dict:
    """What a saved state must match to be resumed: the same stage, method, data size, length, batch, seed
    and number of data-parallel processes."""
    fingerprint = {"name": desc, "method": method.name, "examples": len(data), "total": setup.total,
                   "batch_size": schedule.batch_size, "seed": seed}
    if setup.accumulate > 1:
        fingerprint["grad_accum_steps"] = setup.accumulate
    if processes > 1:
        fingerprint["processes"] = processes
    return fingerprint


def resume(checkpoints: TrainingCheckpoints | None, fingerprint: dict, model: torch.nn.Module,
           setup: TrainingSetup, device: torch.device, desc: str) -> TrainingState:
    """The state saved by this same run (model, optimizer, scheduler and RNG restored in place), else a fresh one."""
    saved = checkpoints.load(fingerprint, device) if checkpoints is not None else None
    if saved is None:
        return TrainingState()
    model.load_state_dict(saved["model"])
    setup.optimizer.load_state_dict(saved["optimizer"])
    setup.scheduler.load_state_dict(saved["scheduler"])
    state = TrainingState(**{f.name: saved[f.name] for f in dataclasses.fields(TrainingState)})
    set_rng_state(saved["rank_rng"][distributed.rank()] if "rank_rng" in saved else saved["rng"])
    if distributed.is_writer():
        note(f"[{desc}] resuming from the checkpoint at step {state.step}/{setup.total}")
    return state


def save(checkpoints: TrainingCheckpoints, fingerprint: dict, state: TrainingState, model: torch.nn.Module,
         setup: TrainingSetup, seconds: float) -> None:
    """Everything :func:`resume` needs to go on from here; ``seconds``: the training time up to now. Data
    parallel: every rank calls this (it gathers each rank's RNG state), rank 0 writes."""
    ranks = distributed.gather_objects(rng_state())
    if not distributed.is_writer():
        return
    checkpoints.save({f.name: getattr(state, f.name) for f in dataclasses.fields(TrainingState)} | {
        "fingerprint": fingerprint, "model": model.state_dict(), "optimizer": setup.optimizer.state_dict(),
        "scheduler": setup.scheduler.state_dict(), "rng": ranks[0], "seconds": seconds}
        | ({"rank_rng": ranks} if len(ranks) > 1 else {}))


# ---------------------------------------------------------------- one optimizer step

def optimizer_step(setup: TrainingSetup, state: TrainingState, schedule: TrainConfig, method: Method,
                   student: Seq2SeqLM, teacher: Seq2SeqLM | None, micro: list, sampling: DecodeConfig,
                   layer_map: dict | None, collect: Collect) -> tuple[torch.Tensor, dict]:
    """One optimizer step on the micro-batches ``micro``: the method's loss and its backward pass (under
    accumulation each micro-batch's share is backpropagated as soon as it is computed), gradient clipping,
    the optimizer and scheduler steps. Returns the loss and its named terms; a non-finite loss or gradient
    norm raises :class:`NonFiniteLoss` (under fp16 the scaler skips such a step instead, counted in ``state``)."""
    accelerator = setup.accelerator
    parallel = distributed.world_size() > 1
    with accelerator.autocast():
        if parallel:
            loss, terms = parallel_step(method, student, teacher, micro, sampling, layer_map, collect=collect,
                                        backward=accelerator.backward)
        elif setup.accumulate == 1:
            loss, terms = method_loss(method, student, teacher, micro[0], sampling, layer_map, collect=collect)
        else:
            loss, terms = accumulated_step(method, student, teacher, micro, sampling, layer_map,
                                           collect=collect, backward=accelerator.backward)
    if not torch.isfinite(loss):
        raise NonFiniteLoss(state.step + 1, "loss", {k: float(v.detach()) for k, v in terms.items()})
    if setup.accumulate == 1 and not parallel:
        accelerator.backward(loss)
    grad_norm = accelerator.clip_grad_norm_(student.model.parameters(), schedule.grad_clip)
    if not torch.isfinite(grad_norm) and accelerator.scaler is None:  # fp16: the scaler skips the step
        raise NonFiniteLoss(state.step + 1, "gradient norm", {k: float(v.detach()) for k, v in terms.items()})
    setup.optimizer.step()
    setup.scheduler.step()
    setup.optimizer.zero_grad(set_to_none=True)
    state.skipped_steps += int(accelerator.optimizer_step_was_skipped)
    return loss, terms


def loss_rows(step: int, position: float, loss: torch.Tensor, terms: dict) -> list[dict]:
    """The training curve's rows of one step: the loss and each of its named terms."""
    return [{"step": step, "epoch": position, "split": "train", "name": "loss", "value": loss.item()},
            *({"step": step, "epoch": position, "split": "train", "name": f"loss/{k}", "value": v.item()}
              for k, v in terms.items())]


# ---------------------------------------------------------------- checkpoint selection

def validated(validate: Callable[[Seq2SeqLM], float], student: Seq2SeqLM) -> float:
    """The validation score; data parallel: every rank validates (the weights are the same on every rank; the
    decoding is split over the ranks and gathered, :func:`harness.evaluate.decode`) and takes rank 0's score, so
    every rank selects the same checkpoint."""
    return distributed.broadcast_float(validate(student))


def select_checkpoint(state: TrainingState, model: torch.nn.Module, score: float, position: float,
                      where: str) -> None:
    """Record a validation ``score`` (higher is better) and keep a copy of the weights when it beats the best."""
    state.curves.append({"step": state.step, "epoch": position, "split": "validation", "name": "selection",
                         "value": score})
    improved = state.best_score is None or score > state.best_score
    if improved:
        state.best_score, state.best_step = score, state.step
        state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if distributed.is_writer():
        note(f"{where} (epoch {position:.2f}): validation {score:.2f}{' (best)' if improved else ''}")


def keep_selected(model: torch.nn.Module, state: TrainingState, schedule: TrainConfig) -> int:
    """Load the best validated weights (``select_best``) and return their step; else the last step's weights stay."""
    if schedule.select_best and state.best_state is not None:
        model.load_state_dict(state.best_state)
        return state.best_step
    return state.step

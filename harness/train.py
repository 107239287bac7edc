"""The training loop around the step (:func:`harness.step.method_loss`); every method, and
the teacher's own fine-tuning, trains here.

:func:`train`: AdamW (or Adafactor), linear warm-up/decay, gradient clipping,
non-finite checks, validation-based checkpoint selection, mixed precision through
Accelerate, and resumable checkpoints (:mod:`harness.checkpoint`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .checkpoint import TrainingCheckpoints, rng_state, set_rng_state
from .config import DecodeConfig, TrainConfig
from .data import TokenizedSplit, batches, num_batches
from .lm import Seq2SeqLM, embedding_parameters
from .methods.base import Method
from .progress import note, progress
from .step import Collect, collect_prefix, method_loss
from .step.accumulate import accumulated_step


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


PRECISIONS = ("no", "fp16", "bf16")


def make_optimizer(params, schedule: TrainConfig):
    if schedule.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=schedule.lr, eps=1e-8, weight_decay=0.0)
    if schedule.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=schedule.lr, scale_parameter=False, relative_step=False, warmup_init=False)
    raise ValueError(f"unknown optimizer {schedule.optimizer!r}; known: adamw, adafactor")


def make_accelerator(device: torch.device, precision: str):
    """The Accelerate handle of one training run: mixed precision, loss scaling, clipping.

    Models stay where the caller put them (no device placement, no wrapping): the
    engine calls encoder and decoder separately, so a wrapper's ``forward`` would be
    bypassed anyway. Accelerate keeps one process-wide state; a single process that
    trains stages with another precision or device (a grid runs many cells in one
    process) starts it afresh. Several processes per cell (``accelerate launch``) are
    refused: every process would run the whole cell, stage cache included.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    kwargs = dict(cpu=device.type == "cpu", mixed_precision=precision, device_placement=False)
    try:
        accelerator = Accelerator(**kwargs)
    except ValueError:    # the process-wide state was made with another precision
        AcceleratorState._reset_state(reset_partial_state=True)
        accelerator = Accelerator(**kwargs)
    if accelerator.num_processes > 1:
        raise RuntimeError("a cell trains in one process; run grids of cells with `harness grid` instead of "
                           "`accelerate launch`")
    if accelerator.device.type != device.type:
        AcceleratorState._reset_state(reset_partial_state=True)
        accelerator = Accelerator(**kwargs)
    return accelerator


def train(student: Seq2SeqLM, method: Method, data: TokenizedSplit, schedule: TrainConfig, *,
          teacher: Seq2SeqLM | None = None, sampling: DecodeConfig | None = None, layer_map: dict | None = None,
          validate: Callable[[Seq2SeqLM], float] | None = None, seed: int = 0, device: torch.device | str = "cpu",
          desc: str = "train", checkpoints: TrainingCheckpoints | None = None,
          collect: Collect = collect_prefix, teacher_mode: str = "eval") -> TrainResult:
    """Train ``student`` on ``data`` with ``method``; keep the best validation checkpoint if asked.

    Steps go through Accelerate (``schedule.precision``: mixed precision, fp16 loss
    scaling, clipping); with ``precision="no"`` a step is plain AdamW on float32.
    ``checkpoints``: save the whole training state every ``checkpoints.every`` steps and,
    if a state of this same run was saved before, go on from it. The data order is a
    function of (seed, epoch) and the RNG state is restored, so a resumed run ends
    exactly where an uninterrupted one would (bit for bit on CPU). ``collect``: the step's
    sampler (:func:`harness.step.method_loss`), passed through unchanged. ``teacher_mode``: the teacher's mode
    while it trains the student ("eval", or "train": dropout on); it is back in eval mode afterwards.
    """
    from transformers import get_linear_schedule_with_warmup

    device = torch.device(device)
    torch.manual_seed(seed)
    model = student.model
    model.train()
    if teacher is not None:   # teacher_mode "train": its dropout on (RunConfig.teacher_mode)
        teacher.model.train(teacher_mode == "train")
    accumulate = schedule.grad_accum_steps
    micro_per_epoch = num_batches(len(data), schedule.batch_size)
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
    if schedule.evals_per_epoch <= 0:
        validate = None  # no validation: the last checkpoint is kept
    eval_every = max(1, round(steps_per_epoch / max(schedule.evals_per_epoch, 1e-9)))
    sampling = sampling or DecodeConfig()

    fingerprint = {"name": desc, "method": method.name, "examples": len(data), "total": total,
                   "batch_size": schedule.batch_size, "seed": seed}
    if accumulate > 1:
        fingerprint["grad_accum_steps"] = accumulate
    curves: list[dict] = []
    best_score, best_step, best_state = None, None, None
    step, epoch, skip, skipped, seconds_before = 0, 0, 0, 0, 0.0
    state = checkpoints.load(fingerprint, device) if checkpoints is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, skip = state["step"], state["epoch"], state["batch_in_epoch"]
        curves, best_score, best_step, best_state = (state["curves"], state["best_score"], state["best_step"],
                                                     state["best_state"])
        skipped, seconds_before = state["skipped_steps"], state["seconds"]
        set_rng_state(state["rng"])
        note(f"[{desc}] resuming from the checkpoint at step {step}/{total}")
    start = time.time()
    bar = progress(total=total, initial=step, desc=desc, unit="step")
    while step < total:
        micro: list = []
        epoch_batches = batches(data, schedule.batch_size, student.pad_id, shuffle=True, seed=seed * 1000 + epoch,
                                sortish=schedule.batching == "sortish")
        for index, batch in enumerate(epoch_batches):
            if index < skip:
                continue    # done before the checkpoint this run resumed from
            micro.append(batch.to(device))
            if len(micro) < accumulate and index + 1 < micro_per_epoch:
                continue    # an optimizer step takes `accumulate` micro-batches (the epoch's last step what is left)
            with accelerator.autocast():
                if accumulate == 1:
                    loss, terms = method_loss(method, student, teacher, micro[0], sampling, layer_map, collect=collect)
                else:   # each micro-batch's share is backpropagated inside, as soon as it is computed
                    loss, terms = accumulated_step(method, student, teacher, micro, sampling, layer_map,
                                                   collect=collect, backward=accelerator.backward)
            micro = []
            if not torch.isfinite(loss):
                raise NonFiniteLoss(step + 1, "loss", {k: float(v.detach()) for k, v in terms.items()})
            if accumulate == 1:
                accelerator.backward(loss)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), schedule.grad_clip)
            if not torch.isfinite(grad_norm) and accelerator.scaler is None:  # fp16: the scaler skips the step
                raise NonFiniteLoss(step + 1, "gradient norm", {k: float(v.detach()) for k, v in terms.items()})
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            skipped += int(accelerator.optimizer_step_was_skipped)
            step += 1
            position = step / steps_per_epoch
            curves.append({"step": step, "epoch": position, "split": "train", "name": "loss", "value": loss.item()})
            curves.extend({"step": step, "epoch": position, "split": "train", "name": f"loss/{k}", "value": v.item()}
                          for k, v in terms.items())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if validate is not None and (step % eval_every == 0 or step == total):
                score = validate(student)
                model.train()
                curves.append({"step": step, "epoch": position, "split": "validation", "name": "selection",
                               "value": score})
                improved = best_score is None or score > best_score
                if improved:
                    best_score, best_step = score, step
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                note(f"[{desc}] step {step}/{total} (epoch {position:.2f}): validation {score:.2f}"
                     f"{' (best)' if improved else ''}")
            if checkpoints is not None and checkpoints.due(step, total):
                checkpoints.save({
                    "fingerprint": fingerprint, "step": step, "epoch": epoch, "batch_in_epoch": index + 1,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "rng": rng_state(), "curves": curves,
                    "best_score": best_score, "best_step": best_step, "best_state": best_state,
                    "skipped_steps": skipped, "seconds": seconds_before + time.time() - start})
            if step >= total:
                break
        skip = 0
        epoch += 1
    bar.close()
    if schedule.select_best and best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_step = step
    for p in frozen.values():
        p.requires_grad_(True)
    model.eval()
    if teacher is not None:
        teacher.model.eval()
    return TrainResult(step, seconds_before + time.time() - start, best_step, best_score, curves,
                       resumed_from=checkpoints.resumed_from if checkpoints is not None else None,
                       skipped_steps=skipped)

"""The shared step engine. Every method, and the teacher's own fine-tuning, trains here.

One training step, top to bottom (:func:`method_loss`):

1. Encode the sources once with the student (with gradient) and, if needed, with the
   teacher (under inference mode). Both encoder outputs are shared by sampling and by
   every loss term.
2. Collect each prefix set the method declares (ground truth, offline teacher outputs,
   online samples); sampling runs without gradient. Teacher samples keep the logits
   they were drawn from, so the teacher never scores its own samples a second time.
3. Push all prefix sets through the student in ONE batched decoder pass (the encoder
   output is tiled), and the sets that still lack teacher logits through the teacher
   likewise, if the loss needs teacher logits.
4. For each prefix source: the method's per-token loss, averaged over the source's
   non-pad tokens; the step loss is the weighted sum of these means.

:func:`train` is the loop around it: AdamW (or Adafactor), linear warm-up/decay,
gradient clipping, non-finite checks, validation-based checkpoint selection, mixed
precision through Accelerate, and resumable checkpoints (:mod:`harness.checkpoint`).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from .checkpoint import TrainingCheckpoints, rng_state, set_rng_state
from .config import DecodeConfig, TrainConfig
from .data import Batch, TokenizedSplit, batches, num_batches
from .methods.base import PREFIX_SOURCES, Method
from .models import Prefix, Seq2SeqLM


class NonFiniteLoss(RuntimeError):
    def __init__(self, step: int, what: str, values: dict):
        self.step, self.what, self.values = step, what, values
        super().__init__(f"non-finite {what} at step {step}: {values}")


def stack_prefixes(prefixes: list[Prefix], pad_id: int) -> Prefix:
    """Concatenate prefix sets along the batch axis, right-padded to one width (one set: as it is, no copy)."""
    if len(prefixes) == 1:
        return Prefix(prefixes[0].tokens, prefixes[0].mask)
    width = max(p.tokens.shape[1] for p in prefixes)
    tokens, masks = [], []
    for p in prefixes:
        extra = width - p.tokens.shape[1]
        tokens.append(torch.nn.functional.pad(p.tokens, (0, extra), value=pad_id))
        masks.append(torch.nn.functional.pad(p.mask, (0, extra), value=0))
    return Prefix(torch.cat(tokens), torch.cat(masks))


def collect_prefix(source: str, batch: Batch, student: Seq2SeqLM, student_enc, teacher: Seq2SeqLM | None,
                   teacher_enc, sampling: DecodeConfig, keep_teacher_logits: bool = False) -> Prefix:
    """The prefix set of ``source`` for ``batch``; sampling reuses the given encoder outputs.

    ``keep_teacher_logits``: teacher samples also carry the logits they were drawn from
    (``Prefix.logits``, single-beam sampling only) so the teacher need not score them again.
    """
    if source == "ground_truth":
        return batch.target
    if source == "teacher_offline":
        if batch.teacher_output is None:
            raise RuntimeError("this method needs the teacher's offline outputs, but the batch has none")
        return batch.teacher_output
    if source == "teacher_sample":
        keep = keep_teacher_logits and sampling.num_beams == 1 and getattr(teacher, "returns_sampling_logits", False)
        with torch.inference_mode():
            prefix = teacher.generate(teacher_enc, sampling, return_logits=True) if keep \
                else teacher.generate(teacher_enc, sampling)
        return _outside_inference(prefix)
    if source in ("student_sample", "student_greedy"):
        decode = sampling if source == "student_sample" else DecodeConfig(
            num_beams=1, do_sample=False, max_new_tokens=sampling.max_new_tokens)
        with torch.inference_mode():
            prefix = student.generate(student_enc, decode)
        return _outside_inference(prefix)
    raise ValueError(f"unknown prefix source {source!r}; known: {', '.join(PREFIX_SOURCES)}")


def _outside_inference(prefix: Prefix) -> Prefix:
    """Ordinary copies of tensors made under ``torch.inference_mode`` (a little faster than ``no_grad``).

    Inference tensors may not be saved for backward, and a method's token loss may
    save its inputs (e.g. ``gather`` saves the token ids), so anything that enters the
    loss is copied once; the copy is small next to the pass that made it.
    """
    copy = lambda t: None if t is None else t.clone()  # noqa: E731
    return Prefix(copy(prefix.tokens), copy(prefix.mask), copy(prefix.logits))


def _clone_all(states):
    return None if states is None else tuple(h.clone() for h in states)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    """bf16/fp16 autocast on CUDA when asked; a no-op elsewhere (CPU steps stay in float32)."""
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def method_loss(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, batch: Batch,
                sampling: DecodeConfig, layer_map: dict | None = None, *,
                autocast_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The step loss of ``method`` on ``batch`` and its terms (one per prefix source, plus ``extra``).

    Each piece of work runs once: the encoders, one sampling call per online source,
    one student pass over all prefix sets, and one teacher pass over the prefix sets
    whose teacher logits did not already come out of sampling. Teacher work runs under
    ``torch.inference_mode``; ``autocast_dtype`` (e.g. ``torch.bfloat16``) turns on
    autocast on CUDA. :mod:`harness.reference` computes the same loss the way the
    paper's code does, for comparison.
    """
    weights = {s: w for s, w in method.prefix_weights().items() if w != 0}
    sources = list(weights)
    hidden = method.needs_hidden_states
    needs_teacher = method.uses_teacher or "teacher_sample" in weights

    with _autocast(batch.source_ids.device, autocast_dtype):
        # 1. encoders, once per batch
        student_enc = student.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)
        teacher_enc = None
        if needs_teacher:
            with torch.inference_mode():
                teacher_enc = teacher.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)

        # 2. prefixes (no gradient through sampling); teacher samples keep their logits when
        # the loss needs teacher logits and nothing else from a teacher pass (hidden states)
        keep = method.uses_teacher and not hidden
        prefixes = {s: collect_prefix(s, batch, student, student_enc, teacher, teacher_enc, sampling, keep)
                    for s in sources}

        # 3. one decoder pass per model: the student over all prefix sets, the teacher over those still unscored
        stacked = stack_prefixes([prefixes[s] for s in sources], student.pad_id)
        student_out = student.forward(student_enc, stacked, repeat=len(sources), hidden_states=hidden)
        teacher_logits: dict[str, torch.Tensor | None] = {s: None for s in sources}
        teacher_states = None
        if method.uses_teacher:
            unscored = [s for s in sources if prefixes[s].logits is None]
            for s in sources:
                if prefixes[s].logits is not None:
                    teacher_logits[s] = prefixes[s].logits
            if unscored:
                with torch.inference_mode():
                    out = teacher.forward(teacher_enc, stack_prefixes([prefixes[s] for s in unscored], student.pad_id),
                                          repeat=len(unscored), hidden_states=hidden)
                logits = out.logits.clone()
                n = len(batch)
                for i, s in enumerate(unscored):
                    teacher_logits[s] = logits[i * n:(i + 1) * n, :prefixes[s].tokens.shape[1]]
                if hidden:
                    teacher_states = {"encoder": _clone_all(teacher_enc.outputs.hidden_states),  # None: decoder-only
                                      "decoder": _clone_all(out.decoder_hidden_states)}

        # 4. per-token losses, averaged per source over non-pad tokens, then weighted
        # (split, not row slicing: its backward is one concatenation instead of a zero-filled copy per set)
        per_source = student_out.logits.split(len(batch))
        terms: dict[str, torch.Tensor] = {}
        loss = student_out.logits.new_zeros((), dtype=torch.float32)
        for i, source in enumerate(sources):
            prefix = prefixes[source]
            per_token = method.token_loss(per_source[i][:, :prefix.tokens.shape[1]], teacher_logits[source],
                                          prefix.tokens, source)
            mask = prefix.mask.to(per_token.dtype)
            terms[source] = (per_token * mask).sum() / mask.sum().clamp_min(1.0)
            loss = loss + weights[source] * terms[source]
        if hidden:
            extra = method.extra_loss(
                {"encoder": student_enc.outputs.hidden_states, "decoder": student_out.decoder_hidden_states},
                teacher_states, batch, layer_map)
            if extra is not None:
                terms["extra"] = extra
                loss = loss + extra
    return loss, terms


# ---------------------------------------------------------------- the training loop

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
          desc: str = "train", checkpoints: TrainingCheckpoints | None = None) -> TrainResult:
    """Train ``student`` on ``data`` with ``method``; keep the best validation checkpoint if asked.

    Steps go through Accelerate (``schedule.precision``: mixed precision, fp16 loss
    scaling, clipping); with ``precision="no"`` a step is plain AdamW on float32.
    ``checkpoints``: save the whole training state every ``checkpoints.every`` steps and,
    if a state of this same run was saved before, go on from it. The data order is a
    function of (seed, epoch) and the RNG state is restored, so a resumed run ends
    exactly where an uninterrupted one would (bit for bit on CPU).
    """
    from transformers import get_linear_schedule_with_warmup

    device = torch.device(device)
    torch.manual_seed(seed)
    model = student.model
    model.train()
    if teacher is not None:
        teacher.model.eval()
    steps_per_epoch = num_batches(len(data), schedule.batch_size)
    total = max(1, math.ceil(schedule.epochs * steps_per_epoch))
    if schedule.max_steps:
        total = min(total, schedule.max_steps)
    accelerator = make_accelerator(device, schedule.precision)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], schedule)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(schedule.warmup_ratio * total), total)
    optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    if schedule.evals_per_epoch <= 0:
        validate = None  # no validation: the last checkpoint is kept
    eval_every = max(1, round(steps_per_epoch / max(schedule.evals_per_epoch, 1e-9)))
    sampling = sampling or DecodeConfig()

    fingerprint = {"name": desc, "method": method.name, "examples": len(data), "total": total,
                   "batch_size": schedule.batch_size, "seed": seed}
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
        tqdm.write(f"[{desc}] resuming from the checkpoint at step {step}/{total}", file=sys.stderr)
    start = time.time()
    bar = tqdm(total=total, initial=step, desc=desc, unit="step", leave=False, dynamic_ncols=True)
    while step < total:
        for index, batch in enumerate(batches(data, schedule.batch_size, student.pad_id, shuffle=True,
                                              seed=seed * 1000 + epoch)):
            if index < skip:
                continue    # done before the checkpoint this run resumed from
            batch = batch.to(device)
            with accelerator.autocast():
                loss, terms = method_loss(method, student, teacher, batch, sampling, layer_map)
            if not torch.isfinite(loss):
                raise NonFiniteLoss(step + 1, "loss", {k: float(v.detach()) for k, v in terms.items()})
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
                tqdm.write(f"[{desc}] step {step}/{total} (epoch {position:.2f}): validation {score:.2f}"
                           f"{' (best)' if improved else ''}", file=sys.stderr)
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
    model.eval()
    return TrainResult(step, seconds_before + time.time() - start, best_step, best_score, curves,
                       resumed_from=checkpoints.resumed_from if checkpoints is not None else None,
                       skipped_steps=skipped)

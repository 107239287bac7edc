"""The shared step engine. Every method, and the teacher's own fine-tuning, trains here.

One training step, top to bottom (:func:`method_loss`):

1. Encode the sources once with the student (with gradient) and, if needed, with the
   teacher (without). Both encoder outputs are shared by sampling and by every loss term.
2. Collect each prefix set the method declares (ground truth, offline teacher outputs,
   online samples); sampling runs without gradient.
3. Push all prefix sets through the student in ONE batched decoder pass (the encoder
   output is tiled), and through the teacher likewise if the loss needs teacher logits.
4. For each prefix source: the method's per-token loss, averaged over the source's
   non-pad tokens; the step loss is the weighted sum of these means.

:func:`train` is the loop around it: AdamW (or Adafactor), linear warm-up/decay,
gradient clipping, non-finite checks, validation-based checkpoint selection.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from .config import DecodeConfig, TrainConfig
from .data import Batch, TokenizedSplit, batches, num_batches
from .methods.base import PREFIX_SOURCES, Method
from .models import Prefix, Seq2SeqLM


class NonFiniteLoss(RuntimeError):
    def __init__(self, step: int, what: str, values: dict):
        self.step, self.what, self.values = step, what, values
        super().__init__(f"non-finite {what} at step {step}: {values}")


def stack_prefixes(prefixes: list[Prefix], pad_id: int) -> Prefix:
    """Concatenate prefix sets along the batch axis, right-padded to one width."""
    width = max(p.tokens.shape[1] for p in prefixes)
    tokens, masks = [], []
    for p in prefixes:
        extra = width - p.tokens.shape[1]
        tokens.append(torch.nn.functional.pad(p.tokens, (0, extra), value=pad_id))
        masks.append(torch.nn.functional.pad(p.mask, (0, extra), value=0))
    return Prefix(torch.cat(tokens), torch.cat(masks))


def collect_prefix(source: str, batch: Batch, student: Seq2SeqLM, student_enc, teacher: Seq2SeqLM | None,
                   teacher_enc, sampling: DecodeConfig) -> Prefix:
    if source == "ground_truth":
        return batch.target
    if source == "teacher_offline":
        if batch.teacher_output is None:
            raise RuntimeError("this method needs the teacher's offline outputs, but the batch has none")
        return batch.teacher_output
    if source == "teacher_sample":
        return teacher.generate(teacher_enc, sampling)
    if source == "student_sample":
        return student.generate(student_enc, sampling)
    if source == "student_greedy":
        greedy = DecodeConfig(num_beams=1, do_sample=False, max_new_tokens=sampling.max_new_tokens)
        return student.generate(student_enc, greedy)
    raise ValueError(f"unknown prefix source {source!r}; known: {', '.join(PREFIX_SOURCES)}")


def method_loss(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, batch: Batch,
                sampling: DecodeConfig, layer_map: dict | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The step loss of ``method`` on ``batch`` and its terms (one per prefix source, plus ``extra``)."""
    weights = {s: w for s, w in method.prefix_weights().items() if w != 0}
    sources = list(weights)
    hidden = method.needs_hidden_states
    needs_teacher = method.uses_teacher or "teacher_sample" in weights

    # 1. encoders, once per batch
    student_enc = student.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)
    teacher_enc = None
    if needs_teacher:
        with torch.no_grad():
            teacher_enc = teacher.encode(batch.source_ids, batch.source_mask, hidden_states=hidden)

    # 2. prefixes (no gradient through sampling)
    prefixes = {s: collect_prefix(s, batch, student, student_enc, teacher, teacher_enc, sampling) for s in sources}

    # 3. one decoder pass per model over all prefix sets
    stacked = stack_prefixes([prefixes[s] for s in sources], student.pad_id)
    student_out = student.forward(student_enc, stacked, repeat=len(sources), hidden_states=hidden)
    teacher_out = None
    if method.uses_teacher:
        with torch.no_grad():
            teacher_out = teacher.forward(teacher_enc, stacked, repeat=len(sources), hidden_states=hidden)

    # 4. per-token losses, averaged per source over non-pad tokens, then weighted
    n = len(batch)
    terms: dict[str, torch.Tensor] = {}
    loss = student_out.logits.new_zeros(())
    for i, source in enumerate(sources):
        prefix = prefixes[source]
        rows, width = slice(i * n, (i + 1) * n), prefix.tokens.shape[1]
        student_logits = student_out.logits[rows, :width]
        teacher_logits = teacher_out.logits[rows, :width] if teacher_out is not None else None
        per_token = method.token_loss(student_logits, teacher_logits, prefix.tokens, source)
        mask = prefix.mask.to(per_token.dtype)
        terms[source] = (per_token * mask).sum() / mask.sum().clamp_min(1.0)
        loss = loss + weights[source] * terms[source]
    if hidden:
        extra = method.extra_loss(
            {"encoder": student_enc.outputs.hidden_states, "decoder": student_out.decoder_hidden_states},
            {"encoder": teacher_enc.outputs.hidden_states, "decoder": teacher_out.decoder_hidden_states},
            batch, layer_map)
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


def make_optimizer(params, schedule: TrainConfig):
    if schedule.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=schedule.lr, eps=1e-8, weight_decay=0.0)
    if schedule.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=schedule.lr, scale_parameter=False, relative_step=False, warmup_init=False)
    raise ValueError(f"unknown optimizer {schedule.optimizer!r}; known: adamw, adafactor")


def train(student: Seq2SeqLM, method: Method, data: TokenizedSplit, schedule: TrainConfig, *,
          teacher: Seq2SeqLM | None = None, sampling: DecodeConfig | None = None, layer_map: dict | None = None,
          validate: Callable[[Seq2SeqLM], float] | None = None, seed: int = 0, device: torch.device | str = "cpu",
          desc: str = "train") -> TrainResult:
    """Train ``student`` on ``data`` with ``method``; keep the best validation checkpoint if asked."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    model = student.model
    model.train()
    if teacher is not None:
        teacher.model.eval()
    steps_per_epoch = num_batches(len(data), schedule.batch_size)
    total = max(1, math.ceil(schedule.epochs * steps_per_epoch))
    if schedule.max_steps:
        total = min(total, schedule.max_steps)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], schedule)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(schedule.warmup_ratio * total), total)
    if schedule.evals_per_epoch <= 0:
        validate = None  # no validation: the last checkpoint is kept
    eval_every = max(1, round(steps_per_epoch / max(schedule.evals_per_epoch, 1e-9)))
    sampling = sampling or DecodeConfig()

    curves: list[dict] = []
    best_score, best_step, best_state = None, None, None
    start, step, epoch = time.time(), 0, 0
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True)
    while step < total:
        for batch in batches(data, schedule.batch_size, student.pad_id, shuffle=True, seed=seed * 1000 + epoch):
            batch = batch.to(device)
            loss, terms = method_loss(method, student, teacher, batch, sampling, layer_map)
            if not torch.isfinite(loss):
                raise NonFiniteLoss(step + 1, "loss", {k: float(v) for k, v in terms.items()})
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
            if not torch.isfinite(grad_norm):
                raise NonFiniteLoss(step + 1, "gradient norm", {k: float(v) for k, v in terms.items()})
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
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
            if step >= total:
                break
        epoch += 1
    bar.close()
    if schedule.select_best and best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_step = step
    model.eval()
    return TrainResult(step, time.time() - start, best_step, best_score, curves)

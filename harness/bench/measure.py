"""Measuring one training step (the loss and its backward pass; the optimiser step is the
same in every mode and is left out) in each execution mode, in paired rounds.

Each repeat runs every arm — a (variant, mode) pair — once, with the same seed (hence the
same samples) and in a rotating order, so that a slow spell of a shared machine hits all
of them alike. A step time is the median over repeats; a ratio between two arms is the
median over repeats of their per-repeat ratio (paired: both ran in the same round), which
stays put when the machine's load changes halfway. Tokens per second counts the non-pad
target tokens of all prefix sets of the step. Peak memory is
``torch.cuda.max_memory_allocated`` on GPU; on CPU it is the peak of the running sum of
the allocations and frees that torch's CPU allocator reports to the profiler during one
step (a separate, untimed step), i.e. tensor memory only, above what was live before the
step.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from typing import Callable

import torch

from ..methods.base import Method
from ..step import collect_prefix, step_loss
from .synthetic import Setup


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the profiler's C++ start/stop lines, which bypass Python's sys.stderr."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def run_step(setup: Setup, mode: str, method: Method, seed: int) -> tuple[float, float]:
    """One timed step (loss + backward) of ``mode``; returns (seconds, loss)."""
    fn = step_loss(mode)
    setup.student.model.zero_grad(set_to_none=True)
    _sync(setup.device)
    torch.manual_seed(seed)
    start = time.perf_counter()
    loss, _ = fn(method, setup.student, setup.teacher, setup.batch, setup.cfg.sampling, setup.layer_map,
                 autocast_dtype=setup.autocast_dtype)
    loss.backward()
    _sync(setup.device)
    seconds = time.perf_counter() - start
    return seconds, float(loss.detach())


def peak_memory_mib(setup: Setup, mode: str, method: Method, seed: int) -> tuple[float, str]:
    """Peak tensor memory of one step above what was live before it, and how it was measured."""
    if setup.device.type == "cuda":
        setup.student.model.zero_grad(set_to_none=True)
        torch.cuda.synchronize(setup.device)
        torch.cuda.reset_peak_memory_stats(setup.device)
        base = torch.cuda.memory_allocated(setup.device)
        run_step(setup, mode, method, seed)
        return (torch.cuda.max_memory_allocated(setup.device) - base) / 2 ** 20, "cuda.max_memory_allocated"
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run_step(setup, mode, method, seed)
    with _quiet_stderr():
        events = prof.profiler.kineto_results.events()
    changes = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in changes:
        live += nbytes
        peak = max(peak, live)
    return peak / 2 ** 20, "profiler allocation events (CPU tensors)"


def count_tokens(setup: Setup, method: Method, seed: int) -> int:
    """Non-pad target tokens over all prefix sets of the step with ``seed`` (the first timed step's samples;
    random-weight models rarely stop early, so every repeat's count is within a few tokens of it)."""
    s, t, b = setup.student, setup.teacher, setup.batch
    torch.manual_seed(seed)
    with torch.no_grad():
        s_enc = s.encode(b.source_ids, b.source_mask)
        t_enc = t.encode(b.source_ids, b.source_mask)
        return sum(int(collect_prefix(source, b, s, s_enc, t, t_enc, setup.cfg.sampling).mask.sum())
                   for source in method.active_prefix_weights())


def measure(setup: Setup, label: str, variants: dict[str, tuple[Method, tuple[str, ...]]],
            progress: Callable[[str], None] = lambda _: None) -> list[dict]:
    """Rows (one per variant and mode) for one method: median step time, tokens/s, peak memory, loss agreement.

    ``variants`` maps a variant name ("default", "online-teacher") to its method object and
    modes. Every (variant, mode) arm runs once per repeat, in an order rotated each repeat,
    so that all ratios between arms — fast/reference, fast/bare, online/offline — are
    measured side by side.
    """
    cfg = setup.cfg
    arms = [(v, mode) for v, (_, modes) in variants.items() for mode in modes]
    times: dict[tuple[str, str], list[float]] = {arm: [] for arm in arms}
    losses: dict[tuple[str, str], list[float]] = {arm: [] for arm in arms}
    for r in range(cfg.warmup + cfg.repeats):
        for variant, mode in arms[r % len(arms):] + arms[:r % len(arms)]:
            seconds, loss = run_step(setup, mode, variants[variant][0], cfg.seed + r)
            if r >= cfg.warmup:
                times[variant, mode].append(seconds)
                losses[variant, mode].append(loss)
    median = {arm: statistics.median(times[arm]) for arm in arms}
    nan = float("nan")

    def ratio(top: tuple[str, str], bottom: tuple[str, str]) -> float:
        """Median over repeats of the per-repeat ratio: both arms of each pair ran in the same round."""
        if top not in times or bottom not in times:
            return nan
        return statistics.median(a / b for a, b in zip(times[top], times[bottom]))

    rows = []
    for variant, (method, modes) in variants.items():
        tokens = count_tokens(setup, method, cfg.seed + cfg.warmup)
        for mode in modes:
            arm = (variant, mode)
            memory, how = peak_memory_mib(setup, mode, method, cfg.seed)
            fast = losses.get((variant, "fast"))
            rows.append({
                "preset": cfg.preset, "method": label, "variant": variant, "mode": mode,
                "step_s": median[arm], "step_s_min": min(times[arm]), "step_s_max": max(times[arm]),
                "step_s_all": times[arm], "repeats": cfg.repeats, "tokens": tokens,
                "tokens_per_s": tokens / median[arm], "peak_mem_mib": memory, "memory_measure": how,
                "speedup_vs_reference": ratio((variant, "reference"), arm),
                "over_floor": ratio(arm, (variant, "bare")),
                "online_over_offline": ratio(arm, ("default", mode)) if variant != "default" else nan,
                "loss": statistics.median(losses[arm]),
                "max_loss_diff_vs_fast": max(abs(a - b) for a, b in zip(losses[arm], fast)) if fast else nan,
            })
        progress(f"[bench] {cfg.preset} {label}{'' if variant == 'default' else ' (' + variant + ')'}: "
                 + ", ".join(f"{m} {median[variant, m] * 1000:.0f} ms" for m in modes))
    return rows

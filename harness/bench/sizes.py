"""What a bench preset's sizes need in memory, checked before anything is allocated: the models and the
largest step against what the device has free (the shapes themselves: :func:`.presets.check_shapes`).

The memory estimate is :func:`harness.grid.memory.step_memory` (the dry run's model) at the bench's
batch and lengths: the weights of teacher and student (fp32) and, for the method with the largest step,
gradients, activations and logits (the bench takes no optimizer step). On CPU PyTorch's attention keeps
its score matrix (``attention="eager"``), on CUDA the fused kernels do not.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from ..errors import HarnessError
from ..grid.cost import Architecture, architecture_of
from ..grid.memory import GIB, Memory, StepShape, step_memory
from ..step.prefixes import ONLINE_SOURCES
from .presets import BenchConfig

#: Refuse when the estimate exceeds this share of the free memory (the estimate leaves out the allocator's
#: slack, the interpreter, and on CUDA the context).
HEADROOM = 0.8


def architectures(cfg: BenchConfig) -> tuple[Architecture, Architecture]:
    """(teacher, student) shapes of the preset's models."""
    teacher = architecture_of(cfg.teacher, cfg.vocab_size)
    return teacher, teacher.with_depth(0 if teacher.decoder_only else cfg.student.encoder_layers,
                                       cfg.student.decoder_layers)


def step_shape(cfg: BenchConfig, method) -> StepShape:
    """One bench step of ``method``: its prefix sets stacked, padded to the longest (a sample: max_new_tokens
    and its EOS)."""
    sources = list(method.active_prefix_weights()) or ["ground_truth"]
    target = max(cfg.sampling.max_new_tokens + 1 if s in ONLINE_SOURCES else cfg.target_tokens for s in sources)
    return StepShape(cfg.batch_size, cfg.source_tokens, target, len(sources), bool(method.uses_teacher))


def bench_memory(cfg: BenchConfig, method, device_type: str) -> Memory:
    """The estimate of a bench step of ``method``: both models' weights (the bench builds the teacher for every
    method), no optimizer state (it takes no optimizer step)."""
    teacher, student = architectures(cfg)
    memory = step_memory(student, teacher, step_shape(cfg, method), "bf16" if cfg.autocast != "none" else "fp32",
                         attention="eager" if device_type == "cpu" else "fused")
    return replace(memory, optimizer=0.0)


def available_bytes(device: torch.device) -> float | None:
    """Free memory on ``device``: CUDA's free memory; on CPU MemAvailable, within a cgroup's limit (None: unknown)."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    free = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free.append(int(line.split()[1]) * 1024)
    except OSError:
        try:
            free.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    try:   # cgroup v2: the limit less what the group uses
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            free.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return float(min(free)) if free else None


def check_memory(cfg: BenchConfig, methods: list, device: torch.device) -> None:
    """Refuse, in one line, sizes whose models and largest step would not fit in the device's free memory."""
    free = available_bytes(device)
    if free is None or not methods:
        return
    memory = {m.name: bench_memory(cfg, m, device.type) for m in methods}
    name = max(memory, key=lambda n: memory[n].total)
    need = memory[name]
    if need.total > HEADROOM * free:
        raise HarnessError(
            f"bench preset {cfg.preset!r} needs about {need.total / GIB:,.1f} GiB on {device} (weights "
            f"{need.weights / GIB:,.1f}, the largest step {need.step / GIB:,.1f}: {name} at batch {cfg.batch_size}, "
            f"{cfg.source_tokens}+{step_shape(cfg, next(m for m in methods if m.name == name)).target_tokens} tokens, "
            f"vocabulary {cfg.vocab_size}), but only {free / GIB:,.1f} GiB are free; lower batch_size, "
            f"source_tokens, target_tokens or the model sizes with --set")

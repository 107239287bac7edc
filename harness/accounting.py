"""Compute accounting: what each stage build cost, by model role.

A :class:`ComputeMeter` is told which models are the teacher and which are students
(:meth:`ComputeMeter.track`); while a stage builds (:meth:`ComputeMeter.measure`) it counts

* forward tokens — token positions each model processed: encoder input positions plus
  decoder (or decoder-only) positions of every forward call, padding included, since
  that is the work done; a cached generation step counts one position per sequence;
* generated tokens — non-padding tokens in the sequences ``generate`` returned;
* teacher tokens from the store — the teacher forward tokens a step did not compute because it read
  the teacher's distributions from the teacher-output store (:func:`count_from_store`), counted as
  the forward tokens would have been (encoder and decoder positions, padding included);
* peak memory — CUDA: peak allocated bytes of the stage; CPU on Linux: the process's
  peak resident set size during the stage (``/proc/self/clear_refs`` resets it), else
  the process's lifetime peak (``memory_kind`` says which).

The counts come from forward hooks, so they cover every caller (training, sampling,
validation, evaluation) without touching the code that runs the models.
"""

from __future__ import annotations

import sys
import weakref
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

import torch

ROLES = ("teacher", "student")


#: the token counts of :class:`StageCompute`
COUNTED = ("teacher_forward_tokens", "student_forward_tokens", "teacher_generated_tokens",
           "student_generated_tokens", "teacher_tokens_from_store")


@dataclass
class StageCompute:
    teacher_forward_tokens: int = 0
    student_forward_tokens: int = 0
    teacher_generated_tokens: int = 0
    student_generated_tokens: int = 0
    teacher_tokens_from_store: int = 0
    peak_memory_bytes: int | None = None
    memory_kind: str = ""      # cuda_allocated | rss | rss_process_lifetime

    def add(self, role: str, what: str, n: int) -> None:
        name = f"{role}_{what}"
        setattr(self, name, getattr(self, name) + int(n))

    def as_dict(self) -> dict:
        return asdict(self)

    def counts(self) -> dict[str, int]:
        """The token counts (:data:`COUNTED`), which data-parallel ranks add up (the peak memory is a process's)."""
        return {name: getattr(self, name) for name in COUNTED}

    def add_counts(self, counts: dict[str, int]) -> None:
        """Add another process's :meth:`counts`."""
        for name, n in counts.items():
            setattr(self, name, getattr(self, name) + int(n))


#: every live meter, so that a step can report work it skipped to whichever meter tracks its teacher
_METERS: "weakref.WeakSet[ComputeMeter]" = weakref.WeakSet()


def count_from_store(teacher: torch.nn.Module, tokens: int) -> None:
    """Count ``tokens`` teacher forward tokens read from the teacher-output store instead of computed."""
    for meter in list(_METERS):
        if meter.current is not None and meter._roles.get(teacher) == "teacher":
            meter.current.add("teacher", "tokens_from_store", tokens)


class ComputeMeter:
    def __init__(self) -> None:
        self.current: StageCompute | None = None
        self._roles: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        _METERS.add(self)

    def track(self, model: torch.nn.Module, role: str) -> torch.nn.Module:
        """Count ``model``'s work as ``role`` (teacher | student) from now on; tracking twice is a no-op."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
        if model in self._roles:
            return model
        self._roles[model] = role
        model.register_forward_hook(self._count_logits(role))
        if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
            model.get_encoder().register_forward_hook(self._count_encoder(role))
        model.generate = self._count_generated(model, role)
        return model

    def _count_logits(self, role: str):
        def hook(module, args, output):
            logits = getattr(output, "logits", None)
            if self.current is not None and logits is not None:
                self.current.add(role, "forward_tokens", logits.shape[0] * logits.shape[1])
        return hook

    def _count_encoder(self, role: str):
        def hook(module, args, output):
            states = getattr(output, "last_hidden_state", None)
            if self.current is not None and states is not None:
                self.current.add(role, "forward_tokens", states.shape[0] * states.shape[1])
        return hook

    def _count_generated(self, model: torch.nn.Module, role: str):
        # The wrapper holds the model weakly: a strong reference from the model's own attribute
        # would make a cycle, and a cycle keeps (GPU) memory until the garbage collector runs.
        config, ref, generate = model.config, weakref.ref(model), type(model).generate
        pad_id = getattr(config, "pad_token_id", None)

        def counted(*args, **kwargs):
            out = generate(ref(), *args, **kwargs)
            if self.current is not None:
                sequences = getattr(out, "sequences", out)
                prompt = kwargs.get("input_ids")
                skip = 1 if config.is_encoder_decoder else (prompt.shape[1] if prompt is not None else 0)
                new = sequences[:, skip:]
                self.current.add(role, "generated_tokens",
                                 int((new != pad_id).sum()) if pad_id is not None else new.numel())
            return out
        return counted

    @contextmanager
    def measure(self) -> Iterator[StageCompute]:
        """Count everything tracked models do inside the block (one stage build)."""
        if self.current is not None:
            raise RuntimeError("stage builds do not nest: a measurement is already running")
        stats = StageCompute()
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        resettable = _reset_rss_peak()
        self.current = stats
        try:
            yield stats
        finally:
            self.current = None
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                stats.peak_memory_bytes, stats.memory_kind = torch.cuda.max_memory_allocated(), "cuda_allocated"
            else:
                stats.peak_memory_bytes, stats.memory_kind = _rss_peak(resettable)


def _reset_rss_peak() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")   # resets the peak resident set size (VmHWM) to the current size
        return True
    except OSError:
        return False


def _rss_peak(reset_worked: bool) -> tuple[int | None, str]:
    if reset_worked:
        try:
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "rss"
        except (OSError, ValueError, IndexError):
            pass
    try:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024   # bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "rss_process_lifetime"
    except (ImportError, OSError):
        return None, ""

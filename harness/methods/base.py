"""The method plugin interface: a method is a declaration, not a training loop.

A method names where its target prefixes come from and how much each source weighs,
and gives a per-token loss on (student logits, teacher logits). The shared step
engine (:mod:`harness.step`) does the sampling, the forward passes, the masking
and the per-token averaging:

    loss = Σ_source weight[source] · mean_{non-pad tokens t of source prefixes} token_loss(t)

Prefix sources (PAPER.md §1–2); sampling never carries a gradient:

* ``ground_truth``    – the data set's reference
* ``teacher_offline`` – the teacher's beam-search output, made once before training
* ``teacher_sample``  – a fresh teacher sample each step (online)
* ``student_sample``  – a fresh student sample each step (sampling beam search / top-k / top-p)
* ``student_greedy``  – the student's greedy decode each step
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import ClassVar

import torch

PREFIX_SOURCES = ("ground_truth", "teacher_offline", "teacher_sample", "student_sample", "student_greedy")
#: The prefix sources that are the same in every step and run (the teacher-output store keeps the teacher on them).
FIXED_SOURCES = ("ground_truth", "teacher_offline")


class Method:
    """Base class of method plugins; register subclasses with ``@register_method("name")``."""

    name: ClassVar[str] = ""
    #: source → weight; override :meth:`prefix_weights` when weights depend on parameters.
    prefixes: ClassVar[dict[str, float]] = {}
    #: "predistilled" (every KD method, PAPER.md §1) or "layer_copy" (MLE, pre-distillation).
    init: ClassVar[str] = "predistilled"
    #: False → the engine never runs the teacher during this method's training.
    uses_teacher: ClassVar[bool] = True
    #: True → the engine asks both models for hidden states (pre-distillation's MSE term).
    needs_hidden_states: ClassVar[bool] = False
    #: The name under which tasks declare this method's defaults (``Task.method_defaults``);
    #: None → its own name. Variants share their base method's (js_online, js_exact → "js").
    defaults_key: ClassVar[str | None] = None
    #: False → the per-token loss must see the live teacher's logits, never the stored top-k form
    #: (:mod:`harness.methods.topk`) on fixed prefixes.
    reads_stored_teacher: ClassVar[bool] = True

    @dataclass
    class Params:
        """Hyper-parameters of the method; ``--set method.NAME=VALUE`` sets them."""

    def __init__(self, params: dict | None = None):
        from ..config import check_fields

        self.params = self.Params(**(params or {}))
        check_fields(self.params, "method.")   # the ranges Params fields declare with harness.config.setting

    # -- declaration -------------------------------------------------------------
    def prefix_weights(self) -> dict[str, float]:
        return dict(self.prefixes)

    def active_prefix_weights(self) -> dict[str, float]:
        """The prefix sources a step uses (weight ≠ 0), in declaration order."""
        return {s: w for s, w in self.prefix_weights().items() if w != 0}

    @property
    def needs_teacher(self) -> bool:
        """Whether training runs the teacher: for its logits, or to sample prefixes from it."""
        return self.uses_teacher or "teacher_sample" in self.active_prefix_weights()

    def source_cap(self) -> int | None:
        """A cap on the sources this method trains and validates on, where it is tighter than
        ``tokenizer.max_source_tokens`` (the reference's WMT ENGINE: 128); None: the tokenizer's."""
        return None

    @property
    def teacher_reads_student_encoder(self) -> bool:
        """Whether the teacher's decoder reads the student's encoder output instead of its own, with gradient
        flowing through the (frozen) teacher into the student's encoder (the reference's pre-distillation)."""
        return False

    @property
    def stored_teacher_sources(self) -> tuple[str, ...]:
        """The active fixed prefix sources whose teacher logits the step may read from the teacher-output
        store: none when the step needs more of the teacher than its logits (hidden states, a pass on the
        student's encoder output) or the method opts out (``reads_stored_teacher``)."""
        if not (self.uses_teacher and self.reads_stored_teacher) or self.needs_hidden_states \
                or self.teacher_reads_student_encoder:
            return ()
        return tuple(s for s in self.active_prefix_weights() if s in FIXED_SOURCES)

    @property
    def needs_pseudo_labels(self) -> bool:
        """Whether training reads the teacher's offline outputs (the pseudo-label stage)."""
        return "teacher_offline" in self.active_prefix_weights()

    def describe(self) -> dict:
        """What a run records of its method: name, resolved parameters and declaration."""
        return {"name": self.name, "params": dataclasses.asdict(self.params), "init": self.init,
                "prefix_weights": self.prefix_weights(), "needs_teacher": self.needs_teacher,
                "needs_pseudo_labels": self.needs_pseudo_labels}

    def token_loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None,
                   tokens: torch.Tensor, source: str) -> torch.Tensor:
        """Per-token loss [B, T] at every position of a prefix from ``source``.

        ``student_logits``/``teacher_logits`` are [B, T, V]: position t holds q_t / p_t,
        the next-token distributions given y_<t; ``tokens`` [B, T] holds y_t.
        """
        raise NotImplementedError

    def extra_loss(self, student_out, teacher_out, batch, layer_map) -> torch.Tensor | None:
        """An optional loss that is not per target token (e.g. hidden-state matching).

        Under gradient accumulation the engine also passes ``totals=`` ({"encoder": source tokens,
        "decoder": target tokens} of the whole accumulated batch): a method whose extra loss is a mean
        over tokens accepts it and divides by those counts instead of this batch's."""
        return None

    # -- parameters ---------------------------------------------------------------
    @classmethod
    def task_defaults(cls, task_cls, profile: str | None = None) -> dict:
        """The defaults ``task_cls`` declares for this method under ``profile`` (``Task.method_defaults_for``);
        plain defaults live in ``Params``."""
        from ..errors import HarnessError

        if hasattr(task_cls, "method_defaults_for"):
            table = task_cls.method_defaults_for(profile)
        else:
            table = getattr(task_cls, "method_defaults", None)
        declared = dict((table or {}).get(cls.defaults_key or cls.name, {}))
        names = [f.name for f in dataclasses.fields(cls.Params)]
        unknown = sorted(set(declared) - set(names))
        if unknown:
            raise HarnessError(f"task {getattr(task_cls, 'name', task_cls)!r} declares method_defaults for "
                               f"{cls.defaults_key or cls.name!r} with unknown parameter(s) {', '.join(unknown)}; "
                               f"valid: {', '.join(names) or '(none)'}")
        return declared

    @classmethod
    def for_task(cls, task_cls, given: dict | None = None, profile: str | None = None) -> "Method":
        """An instance with ``task_cls``'s defaults for this method (under ``profile``), then ``given``
        (see :meth:`resolve_params`)."""
        return cls(cls.resolve_params(given or {}, task_cls, profile))

    @classmethod
    def resolve_params(cls, given: dict, task_cls, profile: str | None = None) -> dict:
        """Task defaults, then ``given`` (text from ``--set`` or Python values), checked against ``Params``."""
        from ..config import parse_value
        from ..errors import HarnessError

        hints = typing.get_type_hints(cls.Params)
        names = [f.name for f in dataclasses.fields(cls.Params)]
        values = dataclasses.asdict(cls.Params(**cls.task_defaults(task_cls, profile)))
        for key, value in given.items():
            if key not in names:
                valid = ", ".join(f"method.{n}" for n in names) or "(this method has no parameters)"
                raise HarnessError(f"unknown parameter {key!r} of method {cls.name!r}; valid: {valid}")
            values[key] = parse_value(value, hints[key], f"method.{key}") if isinstance(value, str) else value
        return values

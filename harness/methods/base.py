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
#: [B, T, V] of the random logits on which :meth:`Method.check_token_loss` calls a method's loss once.
PROBE_SHAPE = (2, 3, 5)


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
        self.params = self.Params(**(params or {}))
        self.check_ranges(self.params)

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

    def check_declaration(self) -> None:
        """The declaration, checked when a cell is configured (before any data or model loads): the prefix
        sources are known, their weights finite numbers ≥ 0, not all 0. Each problem is one
        :class:`HarnessError` line."""
        import math

        from ..errors import HarnessError

        where = f"method {self.name!r}"
        weights = self.prefix_weights()
        for source, weight in weights.items():
            if source not in PREFIX_SOURCES:
                raise HarnessError(f"{where} declares the unknown prefix source {source!r}; known sources: "
                                   f"{', '.join(PREFIX_SOURCES)}")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                    or weight < 0:
                raise HarnessError(f"{where} declares the weight {weight!r} for prefix source {source!r}; expected "
                                   f"a finite number >= 0 (a negative weight would maximise the divergence)")
        if not any(w > 0 for w in weights.values()):
            raise HarnessError(f"{where} declares no prefix source with a weight > 0 (prefixes={weights!r}); "
                               f"known sources: {', '.join(PREFIX_SOURCES)}")

    def check_token_loss(self) -> None:
        """``token_loss`` once on random logits of :data:`PROBE_SHAPE` per active source, in the process that will
        train (it runs the plugin's code), before any data or model loads: it reads the teacher's logits only
        when ``uses_teacher`` says so (a step passes None otherwise), and returns a floating [B, T] loss with a
        gradient into the student's logits. Each problem is one :class:`HarnessError` line; an error that has
        nothing to do with the teacher is raised as it is (training would raise it too). Milliseconds."""
        from ..errors import HarnessError

        where = f"method {self.name!r}"
        generator = torch.Generator().manual_seed(0)
        batch, length, vocab = PROBE_SHAPE
        teacher = torch.randn(batch, length, vocab, generator=generator)
        tokens = torch.randint(0, vocab, (batch, length), generator=generator)
        for source in self.active_prefix_weights():
            student = torch.randn(batch, length, vocab, generator=generator).requires_grad_(True)
            with torch.enable_grad():
                if self.uses_teacher:
                    loss = self.token_loss(student, teacher, tokens, source)
                else:
                    try:
                        loss = self.token_loss(student, None, tokens, source)
                    except Exception as err:
                        try:   # does it work with the teacher's logits? then it reads them
                            self.token_loss(student, teacher, tokens, source)
                        except Exception:
                            raise err from None
                        raise HarnessError(f"{where}: token_loss for {source!r} reads the teacher's logits, but the "
                                           f"method declares uses_teacher = False (a step passes it None: "
                                           f"{type(err).__name__}); declare uses_teacher = True") from None
            if not isinstance(loss, torch.Tensor) or not loss.is_floating_point() \
                    or tuple(loss.shape) != (batch, length):
                got = (f"a {loss.dtype} tensor of shape {list(loss.shape)}" if isinstance(loss, torch.Tensor)
                       else type(loss).__name__)
                raise HarnessError(f"{where}: token_loss for {source!r} returned {got}; expected one loss per "
                                   f"position, a floating tensor of shape [B, T] = {[batch, length]} (reduce the "
                                   f"vocabulary axis inside token_loss)")
            if not loss.requires_grad:
                raise HarnessError(f"{where}: token_loss for {source!r} has no gradient with respect to the "
                                   f"student's logits (computed under no_grad, or detached): training would not "
                                   f"move the student")

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
    def resolve_params(cls, given: dict, task_cls, profile: str | None = None, *, prefix: str = "method") -> dict:
        """Task defaults, then ``given`` (text from ``--set`` or Python values), checked against ``Params``.

        ``prefix``: the parameter group the user set them under (``method``, or ``predistill`` for a KD cell's
        pre-distilled student, :data:`harness.config.PARAM_GROUPS`); messages name the keys ``{prefix}.NAME``."""
        from ..config import parse_value
        from ..errors import HarnessError

        hints = typing.get_type_hints(cls.Params)
        names = [f.name for f in dataclasses.fields(cls.Params)]
        values = dataclasses.asdict(cls.Params(**cls.task_defaults(task_cls, profile)))
        for key, value in given.items():
            if key not in names:
                valid = ", ".join(f"{prefix}.{n}" for n in names) or "(this method has no parameters)"
                raise HarnessError(f"unknown parameter {key!r} of method {cls.name!r}; valid: {valid}")
            values[key] = parse_value(value, hints[key], f"{prefix}.{key}") if isinstance(value, str) else value
        return values

    @classmethod
    def check_ranges(cls, params, *, prefix: str = "method") -> None:
        """The ranges the ``Params`` fields declare (:func:`harness.config.setting`); a value outside raises a
        one-line error naming the key ``{prefix}.NAME`` (see :meth:`resolve_params`)."""
        from ..config import check_fields

        check_fields(params, f"{prefix}.")

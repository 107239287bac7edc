"""Peak memory of one training process: parameters, gradients, optimizer state, activations, logits.

Nothing is loaded: sizes come from the :class:`~harness.grid.cost.Architecture` of teacher and
student, the batch and the longest lengths a step can see. Bytes per element: fp32 4; under bf16
mixed precision (Accelerate's autocast) parameters, gradients and optimizer state stay fp32
(the fp32 master weights *are* the parameters), autocast keeps a 2-byte copy of every weight it
casts, activations are 2 bytes, and the log-softmax and losses over the vocabulary run in fp32.

**Parameters and optimizer** (per parameter, fp32): the frozen teacher 4 B; a trained parameter
4 B weight + 4 B gradient + AdamW's two moments 8 B = 16 B (Adafactor without momentum keeps a
factored second moment, O(rows + cols): 8 B); a frozen parameter of the student (``freeze_embeddings``:
token and position embeddings, the tied head) 4 B.

**Activations kept for the backward pass**, per token and layer of the trained model, with fused
attention (PyTorch's scaled-dot-product kernels, transformers' default, which keep no
sequence × sequence score matrix; eager attention adds ``heads · length`` elements per token and
attention): a self-attention + feed-forward layer keeps its input, Q, K, V, the attention output,
the two residual sums into the norms and the feed-forward input (8·d) and the feed-forward's
pre- and post-activation (2·f): 8·d + 2·f elements. A decoder layer adds cross-attention: its input,
Q, output and norm input per target token (4·d), and K, V of the encoder output per source
token (2·d). A decoder-only model runs every layer over source + target. Each prefix set of a
step (ground truth, samples, …) is one more copy: the student's pass runs over them stacked.

**Logits** [batch, target, vocabulary] per prefix set, in fp32: a method with a teacher holds
the student's logits and log-probabilities, the teacher's logits and probabilities, the loss's
product over the vocabulary and, in the backward pass, the logits' gradient — about 6 copies
(:data:`KD_LOGIT_COPIES`); without a teacher (MLE) logits, log-probabilities and gradient, 3.
These are the peak of a KD step at the paper's vocabularies (50k) unless the sources are long.

Left out: the teacher's transient activations (it runs without gradient, one layer at a time),
generation (the KV cache of sampling and beam search), the allocator's fragmentation and the CUDA
context (about 0.5 GiB). :func:`step_memory` is checked against measured peaks by
``tests/test_grid_memory.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cost import Architecture

GIB = 2 ** 30
#: Copies of [batch, target, vocabulary] alive at a KD step's peak, and at a step without a teacher.
KD_LOGIT_COPIES = 6
MLE_LOGIT_COPIES = 3
#: Optimizer state per trained parameter (fp32): AdamW's two moments; Adafactor's factored second moment
#: (O(rows + cols), left out).
OPTIMIZER_BYTES = {"adamw": 8, "adafactor": 0}
PRECISIONS = ("fp32", "bf16")
ATTENTION = ("fused", "eager")


@dataclass(frozen=True)
class StepShape:
    """What one step holds: examples, the longest source and target, prefix sets, and whether a teacher
    scores them."""

    batch: int
    source_tokens: int
    target_tokens: int
    prefix_sets: int = 1
    uses_teacher: bool = True


@dataclass(frozen=True)
class Memory:
    """Bytes of one process at a step's peak, by part."""

    weights: float        # teacher and student parameters
    gradients: float      # the student's trained parameters'
    optimizer: float      # the optimizer's state
    activations: float    # kept for the backward pass
    logits: float         # the vocabulary-sized tensors of the loss
    weight_copies: float = 0.0   # bf16: autocast's cast copies of the weights

    @property
    def parameters(self) -> float:
        """Weights, gradients and optimizer state: what does not depend on the batch."""
        return self.weights + self.gradients + self.optimizer

    @property
    def total(self) -> float:
        return self.parameters + self.activations + self.logits + self.weight_copies

    @property
    def step(self) -> float:
        """What a step allocates above the weights and the optimizer state: what ``harness bench`` measures
        (its gradients are made anew each step; it takes no optimizer step)."""
        return self.gradients + self.activations + self.logits + self.weight_copies


def embedding_parameters(model: Architecture) -> int:
    """Token embeddings (the tied head) and learned positions: what ``freeze_embeddings`` keeps fixed."""
    return model.head() + (1 if model.decoder_only else 2) * model.positions * model.d_model


def activation_elements(model: Architecture, shape: StepShape, attention: str = "fused") -> float:
    """Elements kept for the backward pass by one step of ``model`` (see the module docstring);
    ``attention="eager"`` adds the attention probabilities (heads × queries × keys per attention)."""
    d, f, h = model.d_model, model.ffn_dim, (model.heads if attention == "eager" else 0)
    layer = 8 * d + 2 * f
    b, s, t, k = shape.batch, shape.source_tokens, shape.target_tokens, shape.prefix_sets
    if model.decoder_only:
        return k * b * (s + t) * (model.decoder_layers * (layer + h * (s + t)) + d)
    encoder = b * s * (model.encoder_layers * (layer + h * s) + d)     # once per batch, shared by the prefix sets
    decoder = k * b * (t * (model.decoder_layers * (layer + 4 * d + h * (t + s)) + d) + s * model.decoder_layers * 2 * d)
    return encoder + decoder


def step_memory(student: Architecture, teacher: Architecture | None, shape: StepShape, precision: str = "fp32",
                optimizer: str = "adamw", frozen_embeddings: bool = False, attention: str = "fused") -> Memory:
    """Peak bytes of one training step of ``student`` (``teacher``: frozen beside it, or None when it is
    the teacher being fine-tuned). ``attention``: fused (GPU kernels keep no score matrix) or eager (they do;
    so does PyTorch's CPU path with a padding mask)."""
    if attention not in ATTENTION:
        raise ValueError(f"attention {attention!r}: expected one of {', '.join(ATTENTION)}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    frozen = embedding_parameters(student) if frozen_embeddings else 0
    trained = student.parameters() - frozen
    weights = 4 * (student.parameters() + (teacher.parameters() if teacher is not None else 0))
    act_bytes = 4 if precision == "fp32" else 2
    copies = KD_LOGIT_COPIES if shape.uses_teacher and teacher is not None else MLE_LOGIT_COPIES
    logits = copies * shape.prefix_sets * shape.batch * shape.target_tokens * student.vocab * 4
    casts = 0.5 * weights if precision == "bf16" else 0.0
    return Memory(float(weights), 4.0 * trained, float(trained * OPTIMIZER_BYTES[optimizer]),
                  float(activation_elements(student, shape, attention) * act_bytes), float(logits), casts)


def gib(n: float) -> str:
    return f"{n / GIB:,.1f}"


# ---------------------------------------------------------------- a grid's training stages

@dataclass(frozen=True)
class StageMemory:
    """The memory of one training stage of a dry run."""

    task: str
    stage: str              # teacher | predistill | the method
    shape: StepShape
    fp32: Memory
    bf16: Memory


def training_shape(cfg, spec) -> tuple[StepShape, "object", bool]:
    """A training stage's step: its shape at the recipe's batch and longest lengths, its schedule, and whether
    the frozen teacher sits beside it. Prefix sets are stacked and padded to the longest of them (an online
    sample as long as its decoding allows)."""
    from ..step.prefixes import ONLINE_SOURCES, decode_config

    if spec.stage == "teacher":
        return (StepShape(cfg.teacher_train.batch_size, cfg.tokenizer.max_source_tokens,
                          cfg.tokenizer.max_target_tokens, 1, False), cfg.teacher_train, False)
    method, schedule = spec.method, spec.schedule
    sources = list(method.active_prefix_weights()) or ["ground_truth"]
    target = max(decode_config(s, cfg.online_sampling).max_new_tokens if s in ONLINE_SOURCES
                 else cfg.tokenizer.max_target_tokens for s in sources)
    return (StepShape(schedule.batch_size, cfg.tokenizer.max_source_tokens, target, len(sources),
                      bool(method.uses_teacher)), schedule, bool(method.needs_teacher))


def grid_memory(plans, attention: str = "fused") -> list[StageMemory]:
    """Per task: the teacher's fine-tuning, the pre-distillation and the KD stage with the highest peak among
    the training stages a dry run would build (cells whose teacher's size is unknown are left out)."""
    from .cost import student_architecture, teacher_architecture

    found: dict[tuple[str, str], StageMemory] = {}
    for plan in plans:
        if plan.status != "to run":
            continue
        cfg = plan.cell.config()
        teacher = teacher_architecture(cfg)
        if teacher is None:
            continue
        for stage in plan.stages:
            if stage.state not in ("build", "resume") or stage.stage not in ("teacher", "student"):
                continue
            if stage.stage == "teacher" and cfg.teacher_train.epochs == 0:
                continue
            shape, schedule, with_teacher = training_shape(cfg, stage.spec)
            model = teacher if stage.stage == "teacher" else student_architecture(cfg, teacher)
            frozen = teacher if with_teacher else None
            memory = {p: step_memory(model, frozen, shape, p, schedule.optimizer, schedule.freeze_embeddings,
                                     attention) for p in PRECISIONS}
            name = stage.spec.model if stage.stage == "student" else "teacher"
            kind = name if name in ("teacher", "predistill") else "kd"
            row = StageMemory(cfg.task, name, shape, memory["fp32"], memory["bf16"])
            best = found.get((cfg.task, kind))
            if best is None or row.fp32.total > best.fp32.total:
                found[cfg.task, kind] = row
    return list(found.values())


def format_grid_memory(rows: list[StageMemory]) -> list[str]:
    """The dry run's memory table: GiB per process at a step's peak."""
    if not rows:
        return []
    lines = ["peak memory per process, GiB (one training step at the recipe's batch and longest lengths; kd: the "
             "method with the highest peak):",
             f"{'task':<22} {'stage':<12} {'batch×src×tgt×sets':>20} {'weights+grad+opt':>17} "
             f"{'activ fp32':>10} {'logits':>7} {'total fp32':>10} {'activ bf16':>10} {'total bf16':>10}"]
    for r in rows:
        s = r.shape
        lines.append(f"{r.task:<22} {r.stage:<12} {f'{s.batch}×{s.source_tokens}×{s.target_tokens}×{s.prefix_sets}':>20} "
                     f"{gib(r.fp32.parameters):>17} {gib(r.fp32.activations):>10} {gib(r.fp32.logits):>7} "
                     f"{gib(r.fp32.total):>10} {gib(r.bf16.activations):>10} {gib(r.bf16.total):>10}")
    lines.append("memory model: harness.grid.memory (fp32 weights, gradients and AdamW moments, 16 B per trained "
                 "parameter; bf16: activations halved plus autocast's 2-byte weight copies, logits and losses in "
                 "fp32; fused attention; generation's KV cache and the CUDA context left out)")
    return lines

"""What a grid costs on a GPU: FLOPs of every stage a dry run would build, in GPU-hours.

It lives beside the dry run (:mod:`.runner`) because it prices that plan: per cell, the stages in
state ``build`` or ``resume`` (a cached stage, or one an earlier cell of the grid builds, costs
nothing again). Nothing is loaded: model sizes come from the architecture, data sizes from
:data:`harness.paper.data.PAPER_DATA`, hyper-parameters from the cell's resolved config.

FLOPs are the usual dense estimate: a forward pass costs 2 FLOPs per parameter a token passes
through, forward and backward 6. On an encoder-decoder a source token passes through the encoder
layers, a target token through the decoder layers and the LM head; on a decoder-only model every
token passes through all layers and the head. Attention's sequence-length terms and embedding
look-ups are left out. Generation runs the encoder (or the prompt) once per beam's worth of
input and the decoder once per generated token and beam; outputs are assumed as long as the
data's mean target.

Hours = dense FLOPs / the dense rate + decoding FLOPs / the decoding rate of a :class:`Throughput`.
:data:`A100_BF16` is a stated assumption; a throughput measured by ``harness bench`` can replace
it as another :class:`Throughput` (tokens/s × FLOPs per token of the benched model).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..config import DecodeConfig, ModelConfig, RunConfig, TrainConfig
from ..paper.data import PAPER_DATA, DataStats
from ..step.prefixes import ONLINE_SOURCES, decode_config

GIGA = 1e9
HOUR = 3600.0


# ---------------------------------------------------------------- model sizes

@dataclass(frozen=True)
class Architecture:
    """What a parameter count needs: the family's layer shape, widths and depths."""

    family: str           # bart | t5 | gpt2 (other families are counted as bart: biased linears, two norms)
    d_model: int
    ffn_dim: int
    vocab: int
    positions: int        # learned position embeddings per stack (0: T5's relative bias)
    encoder_layers: int   # 0 for decoder-only
    decoder_layers: int
    heads: int = 1        # attention heads (not in the count; what a model built from this shape needs)

    @property
    def decoder_only(self) -> bool:
        return self.encoder_layers == 0

    def encoder_layer(self) -> int:
        """Parameters of one encoder layer (GPT-2's block has the same shape)."""
        d, f = self.d_model, self.ffn_dim
        if self.family == "t5":        # no biases; one RMS-norm weight per sub-layer
            return 4 * d * d + 2 * d * f + 2 * d
        return 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * (2 * d)

    def decoder_layer(self) -> int:
        """Parameters of one decoder layer: an encoder layer plus cross-attention and its norm
        (a decoder-only block is an encoder layer)."""
        d = self.d_model
        if self.decoder_only:
            return self.encoder_layer()
        cross = 4 * d * d + d if self.family == "t5" else 4 * (d * d + d) + 2 * d
        return self.encoder_layer() + cross

    def head(self) -> int:
        """The LM head (tied to the token embeddings)."""
        return self.vocab * self.d_model

    def source_params(self) -> int:
        """Parameters a source token passes through."""
        if self.decoder_only:
            return self.target_params()
        return self.encoder_layers * self.encoder_layer()

    def target_params(self) -> int:
        """Parameters a target token passes through (decoder layers and the LM head)."""
        return self.decoder_layers * self.decoder_layer() + self.head()

    def parameters(self) -> int:
        """All parameters: layers, token embeddings (= the head), learned positions."""
        stacks = 1 if self.decoder_only else 2
        source = 0 if self.decoder_only else self.source_params()
        return source + self.target_params() + stacks * self.positions * self.d_model

    def with_depth(self, encoder_layers: int, decoder_layers: int) -> "Architecture":
        return replace(self, encoder_layers=encoder_layers, decoder_layers=decoder_layers)

    def model_config(self) -> ModelConfig:
        """The :class:`~harness.config.ModelConfig` that builds this shape with random weights
        (:func:`harness.lm.build_model`; BART's learned positions carry 2 rows beyond ``max_positions``)."""
        return ModelConfig(family=self.family, d_model=self.d_model, encoder_layers=self.encoder_layers,
                           decoder_layers=self.decoder_layers, heads=self.heads, ffn_dim=self.ffn_dim,
                           dropout=0.0, max_positions=max(2, self.positions - POSITION_OFFSET.get(self.family, 0))
                           if self.positions else 512)


#: Rows of learned positions a family embeds beyond ``max_positions`` (BART's offset of 2).
POSITION_OFFSET = {"bart": 2}


def architecture_of(model: ModelConfig, vocab: int) -> Architecture:
    """The shape of a model built from ``model`` (:func:`harness.lm.build_model`) over ``vocab`` tokens."""
    positions = 0 if model.family == "t5" else model.max_positions + POSITION_OFFSET.get(model.family, 0)
    return Architecture(model.family, model.d_model, model.ffn_dim, vocab, positions,
                        0 if model.family == "gpt2" else model.encoder_layers, model.decoder_layers, model.heads)


# Shapes from the hub config.json files (transformers' BartConfig defaults are bart-large's; t5-base: d_kv 64 × 12
# heads = d_model; DialoGPT-medium is GPT-2 medium: n_embd 1024, n_layer 24, n_head 16, n_positions 1024).
_BART_LARGE = Architecture("bart", 1024, 4096, 50265, 1026, 12, 12, heads=16)   # facebook/bart-large
_T5_BASE = Architecture("t5", 768, 3072, 32128, 0, 12, 12, heads=12)            # t5-base
#: The paper's teachers (their students have the same widths, fewer layers).
PAPER_MODELS = {
    "facebook/bart-large": _BART_LARGE,                                  # 406M
    "facebook/bart-large-xsum": _BART_LARGE,                             # same architecture, 406M
    "google-t5/t5-base": _T5_BASE, "t5-base": _T5_BASE,                  # 223M
    "microsoft/DialoGPT-medium": Architecture("gpt2", 1024, 4096, 50257, 1024, 0, 24, heads=16),   # 355M
}


def teacher_architecture(cfg: RunConfig) -> Architecture | None:
    """The teacher's architecture: a paper model by its hub id, a built model from its config;
    None for another pretrained model (its size is not known without loading it)."""
    t = cfg.teacher
    if t.pretrained is not None:
        return PAPER_MODELS.get(t.pretrained)
    return architecture_of(t, cfg.tokenizer.vocab_size)


def student_architecture(cfg: RunConfig, teacher: Architecture) -> Architecture:
    return teacher.with_depth(0 if teacher.decoder_only else cfg.student.encoder_layers, cfg.student.decoder_layers)


# ---------------------------------------------------------------- FLOPs

@dataclass(frozen=True)
class Flops:
    dense: float = 0.0      # whole sequences at once: training steps, teacher logits, scoring
    decode: float = 0.0     # autoregressive generation

    def __add__(self, other: "Flops") -> "Flops":
        return Flops(self.dense + other.dense, self.decode + other.decode)

    def __mul__(self, factor: float) -> "Flops":
        return Flops(self.dense * factor, self.decode * factor)


def forward(model: Architecture, data: DataStats) -> float:
    """FLOPs of one forward pass over one (source, target) pair."""
    return 2 * (model.source_params() * data.source_tokens + model.target_params() * data.target_tokens)


def generate(model: Architecture, data: DataStats, decode: DecodeConfig) -> float:
    """FLOPs of generating one output of the data's mean target length (within the decoding's bounds)
    with ``decode.num_beams`` beams."""
    beams = decode.num_beams
    length = min(max(data.target_tokens, decode.min_new_tokens), decode.max_new_tokens)
    prompt = model.source_params() * data.source_tokens * (beams if model.decoder_only else 1)
    return 2 * (prompt + model.target_params() * length * beams)


#: Where each online prefix source is generated from (the others are read: ground truth, pseudo-labels).
SAMPLER = {"teacher_sample": "teacher", "student_sample": "student", "student_greedy": "student"}   # who decodes


@dataclass(frozen=True)
class Sizes:
    """A cell's inputs counted under its config's caps."""

    train_rows: int       # (input, reference) pairs
    train_inputs: int     # distinct training inputs
    validation: int
    test: int


def sizes(cfg: RunConfig, data: DataStats) -> Sizes:
    """The paper data's counts under the cell's ``data`` caps (a subset, ``--set`` shrinking sizes)."""
    def cap(n: int, *limits: int | None) -> int:
        return min([n, *[x for x in limits if x is not None]])

    d = cfg.data
    inputs = cap(data.train_inputs, d.train_subset, d.max_train_examples)
    rows = cap(round(data.train_rows * inputs / data.train_inputs), d.max_train_examples)
    return Sizes(rows, inputs, cap(data.validation, d.max_eval_examples), cap(data.test, d.max_eval_examples))


def validation_flops(model: Architecture, schedule: TrainConfig, cfg: RunConfig, data: DataStats,
                     n: Sizes) -> Flops:
    """Checkpoint selection: ``evals_per_epoch`` decodings of the validation inputs per epoch."""
    return Flops(decode=schedule.epochs * schedule.evals_per_epoch * n.validation
                 * generate(model, data, cfg.selection_decode))


def stage_flops(cfg: RunConfig, spec, data: DataStats) -> Flops:
    """FLOPs of building the stage ``spec`` (a :class:`harness.pipeline.graph.StageSpec`) of the cell ``cfg``."""
    teacher = teacher_architecture(cfg)
    student = student_architecture(cfg, teacher)
    n = sizes(cfg, data)
    data = replace(data, source_tokens=min(data.source_tokens, cfg.tokenizer.max_source_tokens),
                   target_tokens=min(data.target_tokens, cfg.tokenizer.max_target_tokens))
    if spec.stage == "teacher":
        t = cfg.teacher_train
        if t.epochs == 0:
            return Flops()
        return (Flops(dense=t.epochs * n.train_rows * 3 * forward(teacher, data))
                + validation_flops(teacher, t, cfg, data, n))
    if spec.stage == "pseudo_labels":
        return Flops(decode=n.train_inputs * generate(teacher, data, cfg.pseudo_labels))
    if spec.stage == "student":
        method, schedule = spec.method, spec.schedule
        rows = n.train_inputs if spec.config.get("rows") == "per_source" else n.train_rows
        step = Flops()   # one training row: forward and backward cost 3 forward passes (6·N per token)
        for source in method.active_prefix_weights():
            step += Flops(dense=3 * forward(student, data) + (forward(teacher, data) if method.needs_teacher else 0))
            if source in ONLINE_SOURCES:
                sampler = teacher if SAMPLER[source] == "teacher" else student
                step += Flops(decode=generate(sampler, data, decode_config(source, cfg.online_sampling)))
        return step * (schedule.epochs * rows) + validation_flops(student, schedule, cfg, data, n)
    if spec.stage == "evaluation":
        model = teacher if spec.model == "teacher" else student
        flops = Flops(decode=n.test * generate(model, data, cfg.eval_decode),
                      dense=n.test * forward(teacher, data))                   # R_llh: the teacher scores the outputs
        if spec.model == "teacher":
            flops += Flops(decode=n.test * cfg.teacher_dist_samples
                           * generate(teacher, data, cfg.teacher_dist_sampling))
        else:
            flops += Flops(dense=n.test * forward(student, data))               # R_cvg: the student scores the teacher's
        return flops
    return Flops()   # the tokenizer


# ---------------------------------------------------------------- hours

@dataclass(frozen=True)
class Throughput:
    """Sustained FLOP/s of one GPU for whole-sequence passes and for autoregressive decoding."""

    name: str
    dense_flops_per_s: float
    decode_flops_per_s: float

    def hours(self, flops: Flops) -> float:
        return (flops.dense / self.dense_flops_per_s + flops.decode / self.decode_flops_per_s) / HOUR


A100_PEAK_BF16 = 312e12
#: An assumption, not a measurement: 35 % of peak for training and scoring, 10 % for decoding
#: (small batches of beams, one token at a time, bound by memory).
A100_BF16 = Throughput("one A100, bf16 peak 312 TFLOP/s at 35% utilisation for training and scoring, "
                       "10% for decoding", 0.35 * A100_PEAK_BF16, 0.10 * A100_PEAK_BF16)


@dataclass
class CellCost:
    number: int
    hours: float
    stages: dict[str, float]       # label → hours of each stage this cell builds
    unknown: str = ""              # why it cannot be estimated (an unknown model or data)


def remaining(stage) -> float:
    """The share of a stage still to build: 1, or for a training stage that resumes from a checkpoint
    the share of its steps not yet taken (its validations assumed spread alike)."""
    progress = stage.progress or {}
    total = progress.get("total") or 0
    return 1.0 - progress.get("step", 0) / total if stage.state == "resume" and total else 1.0


def estimate_grid(plans, throughput: Throughput = A100_BF16) -> dict[int, CellCost]:
    """Per cell to run (by number): the GPU-hours of the stages it builds (cached and shared stages cost 0)."""
    costs = {}
    for plan in plans:
        if plan.status != "to run":
            continue
        cfg = plan.cell.config()
        data = PAPER_DATA.get(cfg.task)
        if data is None or teacher_architecture(cfg) is None:
            why = f"no paper data sizes for task {cfg.task!r}" if data is None else \
                f"the size of {cfg.teacher.pretrained!r} is not known"
            costs[plan.number] = CellCost(plan.number, 0.0, {}, why)
            continue
        stages = {s.label: throughput.hours(stage_flops(cfg, s.spec, data)) * remaining(s)
                  for s in plan.stages if s.state in ("build", "resume")}
        costs[plan.number] = CellCost(plan.number, sum(stages.values()), stages)
    return costs


def format_cell_cost(cost: CellCost) -> str:
    """One cell's line: its hours and each built stage's."""
    if cost.unknown:
        return f"gpu-h  not estimated: {cost.unknown}"
    stages = ", ".join(f"{label} {hours:,.2f}" for label, hours in cost.stages.items() if hours > 0)
    return f"gpu-h  {cost.hours:,.2f}" + (f"  ({stages})" if stages else "")


def format_costs(plans, costs: dict[int, CellCost], throughput: Throughput = A100_BF16) -> list[str]:
    """The estimate's closing lines: per task, the total, and the assumptions."""
    by_task: dict[str, float] = {}
    for plan in plans:
        cost = costs.get(plan.number)
        if cost is not None and not cost.unknown:
            by_task[plan.cell.task] = by_task.get(plan.cell.task, 0.0) + cost.hours
    unknown = sum(bool(c.unknown) for c in costs.values())
    tasks = ", ".join(f"{task} {hours:,.1f}" for task, hours in by_task.items())
    return [f"estimated GPU-hours to build: {sum(by_task.values()):,.1f} in total"
            + (f" ({tasks})" if tasks else "") + (f"; {unknown} cells not estimated" if unknown else ""),
            f"assumptions: {throughput.name}; FLOPs 6·N per trained token, 2·N per scored or generated token "
            f"(N: the parameters a token passes through; attention terms left out); data sizes and mean lengths "
            f"of harness.paper.data.PAPER_DATA; outputs as long as the mean target"]

"""Bench presets: task-shaped configurations of random-weight models, synthetic batches,
sampling and device, each overridable with ``--set key=value``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from ..config import DecodeConfig, ModelConfig, StudentConfig, set_path
from ..errors import HarnessError, UnknownNameError


@dataclass
class BenchConfig:
    """One bench preset: model sizes, batch shape, sampling and device. ``--set key=value`` overrides fields."""

    preset: str = "dart-like"
    task: str = "dart"                     # whose method defaults apply (e.g. JS β)
    teacher: ModelConfig = field(default_factory=ModelConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    vocab_size: int = 1500
    batch_size: int = 32
    source_tokens: int = 40                # longest source; lengths are uniform in [¾·this, this]
    target_tokens: int = 30                # longest ground truth / offline teacher output, likewise
    sampling: DecodeConfig = field(default_factory=lambda: DecodeConfig(num_beams=1, do_sample=True, top_k=30,
                                                                        max_new_tokens=30))
    device: str = "cpu"                    # cpu | cuda | cuda:N | auto
    threads: int = 0                       # torch CPU threads; 0 keeps torch's default (one per core)
    autocast: str = "none"                 # none | bf16 | fp16 (CUDA only; the same for every mode)
    repeats: int = 5
    warmup: int = 1
    seed: int = 0
    methods: str = ""                      # comma-separated default method list; "" → every registered method
    modes: str = ""                        # comma-separated default modes; "" → fast, reference and bare
    table4: bool = True                    # also time JS and TVD with online teacher prefixes (the paper's Table 4)


PRESETS: dict[str, dict] = {
    # DART on the cpu profile's models: T5 d_model 128, teacher 3+3, student 2+1, batch 32, short sources.
    "dart-like": {},
    # XSum-shaped: long sources (the paper truncates at 1024; XSum articles average about 430 tokens).
    "xsum-like": {"batch_size": 16, "source_tokens": 400, "target_tokens": 40, "sampling.max_new_tokens": 40},
    # The paper's scale on one GPU: a BART-large-sized teacher (12+12 layers, d_model 1024), a 3/1-layer
    # student copied from it, batch 8, sampling beam search with 5 beams (PAPER.md §2), bf16 autocast.
    "paper-gpu": {
        "teacher.family": "bart", "teacher.d_model": 1024, "teacher.heads": 16, "teacher.ffn_dim": 4096,
        "teacher.encoder_layers": 12, "teacher.decoder_layers": 12, "teacher.max_positions": 1024,
        "student.encoder_layers": 3, "student.decoder_layers": 1, "vocab_size": 50265,
        "batch_size": 8, "source_tokens": 512, "target_tokens": 64,
        "sampling.num_beams": 5, "sampling.top_k": 40, "sampling.max_new_tokens": 64,
        # The methods whose modes differ, 3 repeats: about 80 steps of a few seconds each, well under 10 minutes
        # on one H100 by estimate (not yet run on a GPU).
        "device": "cuda", "autocast": "bf16", "repeats": 3, "methods": "kl,rkl,js,tvd",
    },
}

#: ``paper-<name>`` → the task whose ``paper`` profile gives the preset: the paper's teacher shape
#: (:data:`harness.grid.cost.PAPER_MODELS`, random weights, nothing downloaded), the profile's student depths,
#: its KD batch size, longest source and target, and its online sampling.
PAPER_TASKS = {"paper-dart": "dart", "paper-xsum": "xsum", "paper-wmt": "wmt16_en_ro",
               "paper-dialogue": "commonsense_dialogue"}
#: What a paper preset runs on CPU unless ``--set`` says otherwise: a few short steps, samples drawn without
#: beams (the recipe's sizes and beams are for a GPU: one 6-beam sample of bart-large takes about a CPU-minute).
#: On CUDA the recipe's sizes stay.
PAPER_CPU = {"batch_size": 2, "source_tokens": 32, "target_tokens": 16, "sampling.max_new_tokens": 16,
             "sampling.num_beams": 1, "repeats": 1, "warmup": 0}
#: A paper preset's methods and modes: the f-divergences, in the mode training uses.
PAPER_METHODS, PAPER_MODES = "kl,rkl,js,tvd", "fast"


def paper_preset(task: str) -> dict:
    """The values of a ``paper-*`` preset for ``task`` (see :data:`PAPER_TASKS`)."""
    from ..config import resolve_config
    from ..grid.cost import PAPER_MODELS

    run = resolve_config(task, "kl", "paper")
    arch = PAPER_MODELS[run.teacher.pretrained]
    values = {f"teacher.{key}": value for key, value in dataclasses.asdict(arch.model_config()).items()}
    values.update({"task": task, "vocab_size": arch.vocab, "student.encoder_layers": run.student.encoder_layers,
                   "student.decoder_layers": run.student.decoder_layers, "batch_size": run.kd_train.batch_size,
                   "source_tokens": run.tokenizer.max_source_tokens, "target_tokens": run.tokenizer.max_target_tokens,
                   "device": "auto", "methods": PAPER_METHODS, "modes": PAPER_MODES, "table4": False, "repeats": 3})
    values.update({f"sampling.{key}": value for key, value in dataclasses.asdict(run.online_sampling).items()})
    return values


#: ``BenchConfig.autocast`` → the autocast dtype of every mode's step.
AUTOCAST = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_bench_config(preset: str, sets: list[tuple[str, str]] | tuple = ()) -> BenchConfig:
    """The preset's values, then ``--set`` pairs (text, type-checked like ``harness run``'s)."""
    if preset not in PRESETS and preset not in PAPER_TASKS:
        raise UnknownNameError("bench preset", preset, [*PRESETS, *PAPER_TASKS])
    cfg = BenchConfig(preset=preset)
    for key, value in (PRESETS[preset] if preset in PRESETS else paper_preset(PAPER_TASKS[preset])).items():
        set_path(cfg, key, value, from_text=False)
    for key, value in sets:
        if key == "preset":
            raise HarnessError("--set preset=...: choose the preset with --preset")
        set_path(cfg, key, value, from_text=True)
    if preset in PAPER_TASKS and _device_type(cfg.device) == "cpu":
        given = {key for key, _ in sets}
        for key, value in PAPER_CPU.items():
            if key not in given:
                set_path(cfg, key, value, from_text=False)
    if cfg.autocast not in AUTOCAST:
        raise HarnessError(f"autocast={cfg.autocast!r}: expected one of {', '.join(AUTOCAST)}")
    if (cfg.repeats < 1 or cfg.warmup < 0 or cfg.threads < 0 or cfg.batch_size < 1 or cfg.source_tokens < 2
            or cfg.target_tokens < 2):
        raise HarnessError("repeats and batch_size must be ≥ 1, warmup and threads ≥ 0, source/target_tokens ≥ 2")
    # A bench measures a few steps: counts past these run for hours (the memory check passes them) — refused.
    for name, value, most in (("repeats", cfg.repeats, MAX_REPEATS), ("warmup", cfg.warmup, MAX_REPEATS),
                              ("teacher.encoder_layers", cfg.teacher.encoder_layers, MAX_LAYERS),
                              ("teacher.decoder_layers", cfg.teacher.decoder_layers, MAX_LAYERS)):
        if value > most:
            raise HarnessError(f"{name}={value}: expected <= {most} (a bench times a few steps of a model of "
                               f"ordinary depth)")
    check_shapes(cfg)
    return cfg


MAX_REPEATS = 1000   # timed steps per method and mode (and warm-up steps)
MAX_LAYERS = 256     # per stack: deeper than any model the paper or its successors distil

#: Token ids below this are special (pad, bos, eos, unk); the synthetic batches draw from the rest.
FIRST_TOKEN = 4


def check_shapes(cfg: BenchConfig) -> None:
    """Shapes the models can be built and run with, each failure one line naming the field."""
    t, s = cfg.teacher, cfg.student
    decoder_only = t.family == "gpt2"
    if t.d_model % t.heads:
        raise HarnessError(f"teacher.heads={t.heads} must divide teacher.d_model={t.d_model}")
    if not decoder_only and t.encoder_layers < 1:
        raise HarnessError(f"teacher.encoder_layers={t.encoder_layers}: an encoder-decoder ({t.family}) needs ≥ 1")
    if s.decoder_layers > t.decoder_layers or (not decoder_only and s.encoder_layers > t.encoder_layers):
        raise HarnessError(f"the student ({s.encoder_layers if not decoder_only else 0}+{s.decoder_layers} layers) "
                           f"is deeper than the teacher ({t.encoder_layers if not decoder_only else 0}+"
                           f"{t.decoder_layers}): its layers are copied from the teacher's")
    if not decoder_only and s.encoder_layers < 1:
        raise HarnessError(f"student.encoder_layers={s.encoder_layers}: an encoder-decoder needs ≥ 1")
    if cfg.vocab_size <= FIRST_TOKEN:
        raise HarnessError(f"vocab_size={cfg.vocab_size}: needs > {FIRST_TOKEN} (ids 0-3 are special tokens)")
    longest_target = max(cfg.target_tokens, cfg.sampling.max_new_tokens + 1)
    if t.family != "t5":   # learned positions (T5's are relative)
        need = cfg.source_tokens + longest_target if decoder_only else max(cfg.source_tokens, longest_target)
        if need > t.max_positions:
            what = "source_tokens + the longest target" if decoder_only else "the longest source or target"
            raise HarnessError(f"{what} ({need} tokens) exceeds teacher.max_positions={t.max_positions}")


def method_names(cfg: BenchConfig, given: tuple[str, ...] | list[str] = ()) -> list[str]:
    """``given``, else the preset's list, else every registered method; unknown names fail here."""
    from ..registry import METHODS

    names = list(given) or [m.strip() for m in cfg.methods.split(",") if m.strip()] or METHODS.names()
    for name in names:
        METHODS.get(name)
    return names


def make_method(name: str, task: str):
    """The method ``name`` with ``task``'s defaults (e.g. JS β)."""
    from ..registry import METHODS, TASKS

    return METHODS.get(name).for_task(TASKS.get(task))


def _device_type(name: str) -> str:
    """The device type the preset's sizes follow, without checking that this machine has it (the bench run
    itself checks, before it builds anything)."""
    from ..lm import device_type

    try:
        return device_type(name)
    except RuntimeError as err:
        raise HarnessError(f"device={name!r}: {str(err).splitlines()[0]}") from None


def describe(cfg: BenchConfig) -> dict:
    """The resolved configuration as plain data (``harness bench --dry-run`` prints it)."""
    return dataclasses.asdict(cfg)

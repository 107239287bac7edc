"""Typed run configuration, profiles and ``--set key=value`` overrides.

A run is fully described by one :class:`RunConfig`. Profiles (``ci``, ``cpu``,
``paper``) only change sizes and sources; a task may add its own overrides on top
(e.g. its JS β or its decoding). ``--set`` then overrides any field by dotted path,
with the value parsed and checked against the field's declared type.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import operator
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import HarnessError


def setting(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
            ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None,
            choices: tuple | None = None, min_len: int | None = None) -> Any:
    """A config field that carries its one-line help and its valid range (checked by :func:`check_config`).

    ``ge``/``gt``/``le``/``lt`` bound a number, ``choices`` lists the valid values, ``min_len`` bounds a
    string's length; None passes every check (an optional field left unset). Method ``Params`` use it too.
    """
    metadata = {"help": help, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "min_len": min_len}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


DEVICES = "auto, cpu, cuda, cuda:N or mps"

# Upper bounds: generous but finite, so that no value runs forever or overflows where it is used.
#: Seeds: the evaluation seeds seed·1000 + k, and every generator (torch, numpy, random) takes them.
MAX_SEED = 2**32 - 1
MAX_EPOCHS = 1000.0
MAX_STEPS = 10**9
MAX_BATCH = 2**16
MAX_EVALS_PER_EPOCH = 1000.0
MAX_BEAMS = 1000
MAX_TOKENS = 100_000
MAX_EXAMPLES = 10**8
MAX_PROCESSES = 4096      # data-parallel ranks of one cell


@dataclass
class DataConfig:
    source: str = setting("embedded", help="where records come from", choices=("embedded", "local", "hub"))
    data_dir: str | None = setting(None, help="folder of the original release files (source=local)", min_len=1)
    hub_id: str | None = setting(None, help="hub data set id; None: the task's default", min_len=1)
    revision: str | None = setting(None, help="hub revision; None: the task's default", min_len=1)
    seed: int = setting(0, help="seed of the embedded twin generator, of the caps' draws and of split_from", ge=0,
                        le=MAX_SEED)
    split_from: str | None = setting(None, help="local or hub data: divide this one split's file into train, "
                                                "validation and test of train_size/validation_size/test_size records "
                                                "(seeded, disjoint by input); None: each split from its own file",
                                     choices=("train", "validation", "test"))
    train_size: int = setting(1500, help="embedded twin or split_from: training inputs", ge=1, le=MAX_EXAMPLES)
    validation_size: int = setting(150, help="embedded twin or split_from: validation inputs", ge=1, le=MAX_EXAMPLES)
    test_size: int = setting(300, help="embedded twin or split_from: test inputs", ge=1, le=MAX_EXAMPLES)
    max_train_examples: int | None = setting(None, help="cap on training examples: the inputs of a seeded sample, "
                                                        "stratified by the data's source where it has one", ge=1)
    max_eval_examples: int | None = setting(None, help="cap on validation/test inputs: a seeded sample, stratified "
                                                       "by the data's source where it has one", ge=1)
    train_subset: int | None = setting(None, help="seeded sample of this many training inputs, stratified as the "
                                                  "caps (WMT paper: 100,000)", ge=1)
    merge_test_inputs: bool = setting(False, help="test split: one example per distinct input, the references of "
                                                  "its entries merged in release order (DART: the paper's 4,159 "
                                                  "triplesets of the release's 5,097 entries); false: every entry")
    turn_separator: str | None = setting(None, help="dialogue tasks: what joins the context and the turns of a "
                                                    "history; None: the task's own (DialoGPT: <|endoftext|>)", min_len=1)


@dataclass
class TokenizerConfig:
    vocab_size: int = setting(1500, help="vocabulary of the tokenizer trained on the training split (embedded "
                                         "models); below 100 the byte-level alphabet alone exceeds it", ge=100)
    max_source_tokens: int = setting(128, help="longer sources are truncated (and counted)", ge=2)
    max_target_tokens: int = setting(64, help="longer targets are truncated (and counted)", ge=2)


@dataclass
class ModelConfig:
    """The teacher. ``pretrained`` set → ``from_pretrained(pretrained)``; else built from this config."""

    family: str = setting("t5", help="architecture family (gpt2 is decoder-only: decoder_layers is its depth)",
                          choices=("t5", "bart", "gpt2"))
    pretrained: str | None = setting(None, help="hub id or local save_pretrained folder", min_len=1)
    trust_remote_code: bool = setting(False, help="run a hub model's own Python code; off unless the user asks "
                                                  "(--trust-remote-code)")
    d_model: int = setting(128, help="hidden size", ge=1)
    encoder_layers: int = setting(3, help="encoder depth (0 for decoder-only)", ge=0)
    decoder_layers: int = setting(3, help="decoder depth", ge=1)
    heads: int = setting(4, help="attention heads (must divide d_model)", ge=1)
    ffn_dim: int = setting(512, help="feed-forward width", ge=1)
    # the twin is regular enough; dropout cost a third of T5's step time on CPU
    dropout: float = setting(0.0, help="dropout probability", ge=0.0, lt=1.0)
    max_positions: int = setting(256, help="longest sequence the model embeds", ge=2)


@dataclass
class StudentConfig:
    """The student copies alternating teacher layers (PAPER.md §1)."""

    encoder_layers: int = setting(2, help="student encoder depth (at most the teacher's; 0 for decoder-only)", ge=0)
    decoder_layers: int = setting(1, help="student decoder depth (at most the teacher's)", ge=1)


@dataclass
class TrainConfig:
    epochs: float = setting(1.0, help="passes over the training split (fractions allowed); 0 only for the teacher: "
                                      "no fine-tuning", ge=0.0, le=MAX_EPOCHS)
    batch_size: int = setting(32, help="examples per step", ge=1, le=MAX_BATCH)
    lr: float = setting(5e-4, help="peak learning rate", gt=0.0, le=10.0)
    warmup_ratio: float = setting(0.05, help="share of the steps with linear warm-up (unless warmup_steps is set)",
                                  ge=0.0, lt=1.0)
    warmup_steps: int | None = setting(None, help="optimizer steps of linear warm-up; None: warmup_ratio of them",
                                       ge=0, le=MAX_STEPS)
    grad_accum_steps: int = setting(1, help="micro-batches of batch_size per optimizer step (the loss is normalised "
                                            "over the whole accumulated batch)", ge=1, le=MAX_BATCH)
    freeze_embeddings: bool = setting(False, help="keep token and position embeddings (and a tied LM head) fixed")
    grad_clip: float = setting(1.0, help="gradient-norm clipping threshold", gt=0.0)
    optimizer: str = setting("adamw", help="optimiser", choices=("adamw", "adafactor"))
    # Sortish batches train ~1.5× faster on the twins (half of a random batch is padding) but, at equal epochs,
    # gave a DART teacher 4 BLEU worse (docs/speed.md): random stays the default.
    batching: str = setting("random", help="training batches: random, or sortish (random batches of similar source "
                                           "length: less padding; the reference's --sortish_sampler)",
                            choices=("random", "sortish"))
    evals_per_epoch: float = setting(2.0, help="validation checks per epoch for checkpoint selection (PAPER: every "
                                               "0.3-0.5 epoch); 0: none (then select_best must be false)", ge=0.0,
                                   le=MAX_EVALS_PER_EPOCH)
    select_best: bool = setting(True, help="keep the best validation checkpoint; false: the last (dialogue)")
    max_steps: int | None = setting(None, help="stop after this many steps", ge=1, le=MAX_STEPS)
    precision: str = setting("no", help="mixed precision through Accelerate", choices=("no", "fp16", "bf16"))


@dataclass
class DecodeConfig:
    num_beams: int = setting(1, help="number of beams; with do_sample, sampling beam search", ge=1, le=MAX_BEAMS)
    do_sample: bool = setting(False, help="sample instead of searching")
    top_k: int | None = setting(None, help="sample from the k most likely tokens (0 or None: all)", ge=0)
    top_p: float | None = setting(None, help="nucleus sampling mass", gt=0.0, le=1.0)
    length_penalty: float = setting(1.0, help="beam search length penalty exponent")
    max_new_tokens: int = setting(64, help="longest output", ge=1, le=MAX_TOKENS)
    min_new_tokens: int = setting(0, help="shortest output (EOS suppressed before it)", ge=0)
    no_repeat_ngram_size: int = setting(0, help="never repeat an n-gram of this size (0: off)", ge=0)
    batch_size: int = setting(64, help="inputs decoded at once", ge=1, le=MAX_BATCH)


@dataclass
class RunConfig:
    task: str = setting("dart", help="the task plugin")
    method: str = setting("tvd", help="the method plugin")
    profile: str = setting("cpu", help="the profile (sizes and sources)")
    seed: int = setting(42, help="the method stage's seed", ge=0, le=MAX_SEED)
    upstream_seed: int | None = setting(42, help="seed of the teacher, pseudo-labels and pre-distill; None: use "
                                                 "seed (no sharing)", ge=0, le=MAX_SEED)
    device: str = setting("auto", help=f"device: {DEVICES}")
    results_dir: str = setting("results", help="where runs and the stage cache go", min_len=1)
    checkpoint_every: int = setting(100, help="training steps between resumable checkpoints (0: never, no resuming); "
                                              "not part of a run's identity", ge=0, le=MAX_STEPS)
    processes: int = setting(1, help="data-parallel training processes (`harness run --processes N`): each trains on "
                                     "its shard of every batch, so a training batch holds processes x batch_size "
                                     "rows; keyed into the training stages when above 1", ge=1, le=MAX_PROCESSES)
    data: DataConfig = setting(help="data", default_factory=DataConfig)
    tokenizer: TokenizerConfig = setting(help="tokenizer", default_factory=TokenizerConfig)
    teacher: ModelConfig = setting(help="the teacher model", default_factory=ModelConfig)
    student: StudentConfig = setting(help="the student's depth", default_factory=StudentConfig)
    # The teacher improves monotonically over its 6 epochs here: no validation, keep the last checkpoint.
    teacher_train: TrainConfig = setting(help="teacher fine-tuning", default_factory=lambda: TrainConfig(
        epochs=6, lr=3e-3, evals_per_epoch=0, select_best=False))
    student_train: TrainConfig = setting(help="pre-distillation and MLE", default_factory=lambda: TrainConfig(
        epochs=2.5, lr=1e-3, evals_per_epoch=1))
    kd_train: TrainConfig = setting(help="every KD method", default_factory=lambda: TrainConfig(epochs=1, lr=3e-4))
    pseudo_labels: DecodeConfig = setting(help="offline teacher outputs", default_factory=lambda: DecodeConfig(
        num_beams=5))
    # Online samples: top-k sampling here; the paper profile uses sampling beam search (5 beams), 4× the cost on CPU.
    online_sampling: DecodeConfig = setting(help="online samples during training", default_factory=lambda: DecodeConfig(
        num_beams=1, do_sample=True, top_k=30, max_new_tokens=48))
    # Checkpoints are selected with the decoding that the test uses: with greedy selection the
    # chosen checkpoints were not the best under beam search (measured on the cpu profile).
    selection_decode: DecodeConfig = setting(help="validation decoding", default_factory=lambda: DecodeConfig(
        num_beams=5))
    eval_decode: DecodeConfig = setting(help="test decoding", default_factory=lambda: DecodeConfig(num_beams=5))
    kd_train_rows: str = setting("per_reference", help="KD training rows: one per (input, reference) pair as the "
                                 "data has them, or one per input (the reference's DART KD trains on its pseudo-label "
                                 "file, one row per tripleset)", choices=("per_reference", "per_source"))
    teacher_outputs_k: int = setting(0, help="teacher-output store: keep the teacher's top-k log-probabilities and "
                                     "tail mass on fixed training prefixes once, and let the methods read them instead "
                                     "of running the teacher (k at least the vocabulary size: exact; 0: off)", ge=0)
    # The reference's teacher is a submodule of its Lightning module, which PyTorch Lightning 1.0.4 switches back to
    # train mode after every validation (the sanity check included): its logits and samples carry dropout.
    teacher_mode: str = setting("eval", help="the teacher's mode while it guides a student (pre-distillation and every "
                                "KD method): eval, or train (its dropout on, as the reference's Lightning leaves it; "
                                "docs/paper-recipe.md)", choices=("eval", "train"))
    eval_decode_seeds: int = setting(1, help="the teacher's test decodings when eval_decode samples (dialogue): the "
                                     "first (the evaluation's seed) gives its scores as before; the others (seeds "
                                     "seed+1, ...) measure their decoding noise, which the findings then count in "
                                     "the teacher's intervals (3 or more: decided on); 1: one decoding", ge=1, le=20)
    teacher_dist_samples: int = setting(5, help="TeacherDist (PAPER Table 3): teacher samples per test input, "
                                               "drawn by teacher_dist_sampling; 0: not measured", ge=0, le=MAX_BEAMS)
    teacher_dist_sampling: DecodeConfig = setting(help="TeacherDist's sampler (ancestral by default; WMT "
                                        "and dialogue set the reference code's)", default_factory=lambda: DecodeConfig(
        num_beams=1, do_sample=True))
    # The paper scores its risks on sampled outputs (dart/scripts/run_calc_ppl.sh reads a sampled output file).
    risk_sampling: DecodeConfig = setting(help="the one sample per test input that R_llh_paper and R_cvg_paper "
                                               "score (each model samples its own)", default_factory=lambda:
                                          DecodeConfig(num_beams=1, do_sample=True))
    method_params: dict = setting(help="the method's parameters (checked against its Params)", default_factory=dict)
    predistill_params: dict = setting(help="a KD cell's shared pre-distilled student: the parameters set away from "
                                           "the task's defaults (`--set predistill.temperature=2`; keyed into that "
                                           "student's stage, so such a cell trains its own)", default_factory=dict)


# ---------------------------------------------------------------- parameter groups

#: The one translation of the method parameter groups: the prefix users write (``--set method.beta=0.5``,
#: grid specs and filters, report columns) → the RunConfig field that holds the parameters. The field names
#: stay as they are: a run's id hashes the config under them.
PARAM_GROUPS = {"method": "method_params", "predistill": "predistill_params"}
_PREFIX_OF_FIELD = {field_name: prefix for prefix, field_name in PARAM_GROUPS.items()}


def param_key(key: str) -> str:
    """The spelling users write: ``method_params.beta`` → ``method.beta``, ``predistill_params`` →
    ``predistill``; any other key unchanged."""
    head, dot, rest = key.partition(".")
    return _PREFIX_OF_FIELD.get(head, head) + dot + rest


def param_group(key: str) -> tuple[str | None, str]:
    """``method.beta`` (or ``method_params.beta``) → ``("method", "beta")``; a key outside the groups →
    ``(None, key)``."""
    head, dot, rest = param_key(key).partition(".")
    return (head, rest) if dot and head in PARAM_GROUPS else (None, key)


def field_key(key: str) -> str:
    """The RunConfig path of a key users write: ``method.beta`` → ``method_params.beta`` (a bare ``method`` is
    the method's name and stays); any other key unchanged."""
    head, dot, rest = key.partition(".")
    return (PARAM_GROUPS[head] if dot and head in PARAM_GROUPS else head) + dot + rest


def predistill_overrides(given: dict, method_cls, task_cls, profile: str) -> dict:
    """``predistill.*`` of a KD cell, typed and checked against the pre-distillation's Params; only the keys
    given away from the task's default are kept (a cell without any has ``{}``, so its run id and stage keys
    stay what they were)."""
    from .registry import METHODS

    if not given:
        return {}
    PreDistill = METHODS.get("predistill")   # (through the registry: the methods import this module)
    keys = ", ".join(f"predistill.{k}" for k in given)
    if method_cls.name == PreDistill.name:
        raise HarnessError(f"--set {keys}: this cell trains the pre-distilled student itself; set method.* instead")
    if method_cls.init != "predistilled":
        raise HarnessError(f"--set {keys}: method {method_cls.name!r} does not start from the pre-distilled student")
    hints = typing.get_type_hints(PreDistill.Params)
    typed = {k: v if isinstance(v, str) or k not in hints else _coerce(v, hints[k], f"predistill.{k}")
             for k, v in given.items()}   # 2 from a spec file and "2" from --set: the same 2.0
    resolved = PreDistill.resolve_params(typed, task_cls, profile, prefix="predistill")
    PreDistill.check_ranges(PreDistill.Params(**resolved), prefix="predistill")
    defaults = PreDistill.resolve_params({}, task_cls, profile)
    return {k: resolved[k] for k in given if resolved[k] != defaults[k]}   # a default given is no setting


# ---------------------------------------------------------------- checking values

_MAX_SHOWN = 60   # characters of a bad value shown in an error


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else f"{text[:_MAX_SHOWN]}… ({len(text)} characters)"


def _number(bound: float) -> str:
    """A bound as written: integers in full (a seed's 4294967295, not 4.29497e+09), floats short."""
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def range_text(meta: dict) -> str:
    """The valid range a field's metadata declares, in words (empty when it declares none)."""
    if meta.get("choices"):
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    parts = [f"{op} {_number(meta[k])}" for k, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
             if meta.get(k) is not None]
    if meta.get("min_len"):
        parts.append(f"at least {meta['min_len']} character(s)")
    return " and ".join(parts)


def value_problem(value: Any, meta: dict) -> str | None:
    """Why ``value`` is outside the range ``meta`` declares, or None."""
    if value is None:
        return None
    bad = False
    if meta.get("choices") is not None:
        bad = value not in meta["choices"]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        bad = not math.isfinite(value) or any(
            meta.get(k) is not None and not test(value, meta[k])
            for k, test in (("gt", operator.gt), ("ge", operator.ge), ("lt", operator.lt), ("le", operator.le)))
    elif isinstance(value, str) and meta.get("min_len"):
        bad = len(value) < meta["min_len"]
    return f"expected {range_text(meta)}" if bad else None


def check_fields(obj: Any, prefix: str) -> None:
    """Every field of the dataclass ``obj`` (recursively) against the range its metadata declares:
    the first bad one raises a one-line :class:`HarnessError` naming the key, the value and the range."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_fields(value, f"{key}.")
            continue
        problem = value_problem(value, dict(f.metadata))
        if problem:
            help_text = f.metadata.get("help")
            raise HarnessError(f"{key}={_shown(value)}: {problem}" + (f" ({help_text})" if help_text else ""))


def check_config(cfg: RunConfig) -> None:
    """Check every value of ``cfg`` before any work: declared ranges, then the rules that tie fields together."""
    import re

    check_fields(cfg, "")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", cfg.device):
        raise HarnessError(f"device={_shown(cfg.device)}: expected {DEVICES}")
    if cfg.teacher.pretrained is None and cfg.teacher.d_model % cfg.teacher.heads:
        raise HarnessError(f"teacher.heads={cfg.teacher.heads}: must divide teacher.d_model={cfg.teacher.d_model}")
    for side in ("encoder_layers", "decoder_layers"):
        student, teacher = getattr(cfg.student, side), getattr(cfg.teacher, side)
        if cfg.teacher.pretrained is None and student > teacher:
            raise HarnessError(f"student.{side}={student}: at most the teacher's {teacher} (its layers are copied)")
    for name in ("student_train", "kd_train"):
        if getattr(cfg, name).epochs <= 0:
            raise HarnessError(f"{name}.epochs={getattr(cfg, name).epochs:g}: expected > 0 (only the teacher can skip "
                               f"training)")
    for name in ("teacher_train", "student_train", "kd_train"):
        schedule = getattr(cfg, name)
        if schedule.select_best and schedule.evals_per_epoch == 0 and schedule.epochs > 0:
            raise HarnessError(f"{name}.select_best=true needs validation checks to select from, but "
                               f"{name}.evals_per_epoch=0; set {name}.evals_per_epoch > 0 or {name}.select_best=false")
    if cfg.teacher_mode == "train" and cfg.teacher_outputs_k > 0:
        raise HarnessError("teacher_mode=train: the teacher-output store holds the teacher's eval-mode distributions, "
                           "computed once; set teacher_outputs_k=0")
    if cfg.eval_decode_seeds > 1 and not cfg.eval_decode.do_sample:
        raise HarnessError(f"eval_decode_seeds={cfg.eval_decode_seeds}: more test decodings than one differ only when "
                           f"eval_decode samples; set eval_decode.do_sample=true or eval_decode_seeds=1")
    for name in ("pseudo_labels", "online_sampling", "selection_decode", "eval_decode", "teacher_dist_sampling",
                 "risk_sampling"):
        decode = getattr(cfg, name)
        if decode.min_new_tokens > decode.max_new_tokens:
            raise HarnessError(f"{name}.min_new_tokens={decode.min_new_tokens}: at most {name}.max_new_tokens="
                               f"{decode.max_new_tokens}")


def unused_fields(cfg: RunConfig) -> dict[str, str]:
    """Dotted keys of ``cfg`` whose values its sources ignore → why: a model's sizes beside a pretrained teacher,
    the twin's sizes beside real data, a folder or hub id of a source not chosen (the last only when set)."""
    unused: dict[str, str] = {}
    if cfg.teacher.pretrained:
        why = f"teacher.pretrained={cfg.teacher.pretrained!r} brings its own"
        for name in ("d_model", "encoder_layers", "decoder_layers", "heads", "ffn_dim", "dropout", "max_positions"):
            unused[f"teacher.{name}"] = why + " architecture"
        unused["tokenizer.vocab_size"] = why + " tokenizer"
    if cfg.data.source != "embedded" and cfg.data.split_from is None:
        for name in ("train_size", "validation_size", "test_size"):
            unused[f"data.{name}"] = f"data.source={cfg.data.source!r} reads each split whole; the sizes divide " \
                                     f"one file only with data.split_from"
    for name, source in (("data_dir", "local"), ("hub_id", "hub"), ("revision", "hub")):
        if getattr(cfg.data, name) is not None and cfg.data.source != source:
            unused[f"data.{name}"] = f"data.source={cfg.data.source!r}, not {source!r}"
    return unused


#: What a profile's numbers are for, said under its results (`harness run`) and atop a report that holds them.
PROFILE_NOTES = {"ci": "the ci profile only checks that every stage runs (tiny models, 40 training inputs, one epoch "
                       "each): its scores mean nothing, the teacher's included; the default cpu profile gives numbers "
                       "to compare"}

# Profiles change sizes and sources only. Keys are dotted paths of RunConfig.
PROFILES: dict[str, dict[str, Any]] = {
    "ci": {
        "data.train_size": 40, "data.validation_size": 8, "data.test_size": 10,
        "tokenizer.vocab_size": 300,
        "teacher.d_model": 32, "teacher.encoder_layers": 2, "teacher.decoder_layers": 2,
        "teacher.heads": 2, "teacher.ffn_dim": 64,
        "student.encoder_layers": 1, "student.decoder_layers": 1,
        "teacher_train.epochs": 1, "teacher_train.batch_size": 16, "teacher_train.evals_per_epoch": 1,
        "student_train.epochs": 1, "student_train.batch_size": 16, "student_train.evals_per_epoch": 1,
        "kd_train.epochs": 1, "kd_train.batch_size": 16, "kd_train.evals_per_epoch": 1,
        "pseudo_labels.num_beams": 2, "pseudo_labels.max_new_tokens": 16,
        "online_sampling.num_beams": 2, "online_sampling.max_new_tokens": 16,
        "selection_decode.num_beams": 2, "selection_decode.max_new_tokens": 16,
        "eval_decode.num_beams": 2, "eval_decode.max_new_tokens": 16,
        "teacher_dist_sampling.max_new_tokens": 16, "risk_sampling.max_new_tokens": 16,
    },
    "cpu": {},  # the dataclass defaults are the cpu profile
    "paper": {
        # Each paper task sets its whole reference recipe on top of this (its PAPER_RECIPE, listed in
        # docs/paper-recipe.md); these are the sizes for any other task: the hub data, the values the
        # four recipes share (batch 8, 12 KD epochs after 100 warm-up steps) or most use (lr, 28 epochs).
        "data.source": "hub",
        "teacher_train.epochs": 3, "teacher_train.batch_size": 8, "teacher_train.lr": 3e-5,
        "student_train.epochs": 28, "student_train.batch_size": 8, "student_train.lr": 3e-4,
        "kd_train.epochs": 12, "kd_train.batch_size": 8, "kd_train.lr": 1e-4, "kd_train.warmup_steps": 100,
        "kd_train.evals_per_epoch": 3,
        "tokenizer.max_source_tokens": 1024, "tokenizer.max_target_tokens": 128,
        "pseudo_labels.max_new_tokens": 128, "online_sampling.max_new_tokens": 128,
        "eval_decode.max_new_tokens": 128, "selection_decode.max_new_tokens": 128,
        "teacher_dist_sampling.max_new_tokens": 128, "risk_sampling.max_new_tokens": 128,
        "selection_decode.num_beams": 5, "online_sampling.num_beams": 5,
        "teacher.dropout": 0.1,
    },
}


@functools.cache   # a grid resolves thousands of keys; get_type_hints re-evaluates every annotation each call
def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def parse_value(text: str, annotation: Any, key: str) -> Any:
    """Parse ``text`` as a value of ``annotation`` (int, float, bool, str, X | None, dict)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(text, inner[0], key)
    if annotation is bool:
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise HarnessError(f"--set {key}={text}: expected a boolean (true/false)")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise HarnessError(f"--set {key}={text}: expected an integer") from None
    if annotation is float:
        try:
            value = float(text)
        except ValueError:
            raise HarnessError(f"--set {key}={text}: expected a number") from None
        if not math.isfinite(value):
            raise HarnessError(f"--set {key}={text}: expected a finite number")
        return value
    if annotation is str:
        return text
    raise HarnessError(f"--set {key}: cannot set a field of type {annotation}")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check a value that came from Python (a profile, a task override) against the field's type."""
    if isinstance(value, str) and annotation is not str:
        return parse_value(value, annotation, key)
    allowed = typing.get_args(annotation) or (annotation,)
    allowed = tuple(float if a is float else a for a in allowed)
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool) and bool not in allowed:
        raise HarnessError(f"{key}={value!r}: expected {annotation}")
    if float in allowed and isinstance(value, int):
        return float(value)
    if not isinstance(value, tuple(a for a in allowed if isinstance(a, type))):
        raise HarnessError(f"{key}={value!r}: expected {annotation}")
    return value


def set_path(cfg: Any, key: str, value: Any, *, from_text: bool) -> None:
    """Set ``cfg.a.b = value`` by dotted ``key``; unknown keys list the valid ones."""
    parts = field_key(key).split(".")   # `--set method.beta=0.5` reads better than method_params
    target = cfg
    for depth, part in enumerate(parts):
        if not dataclasses.is_dataclass(target):
            raise HarnessError(f"--set {key}: {'.'.join(parts[:depth])} has no fields")
        names = [f.name for f in dataclasses.fields(target)]
        if part not in names:
            import difflib

            prefix = ".".join(parts[:depth])
            valid = [f"{prefix}.{n}" if prefix else n for n in names]
            hint = difflib.get_close_matches(part, names, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise HarnessError(f"unknown config key {key!r}{did}; valid keys here: {', '.join(valid)}")
        if depth == len(parts) - 1:
            annotation = _field_types(type(target))[part]
            if annotation is dict or typing.get_origin(annotation) is dict:
                raise HarnessError(f"--set {key}: set its entries, e.g. {key}.NAME=VALUE")
            if dataclasses.is_dataclass(annotation):
                raise HarnessError(f"--set {key}: set one of its fields, e.g. {key}.{dataclasses.fields(annotation)[0].name}=...")
            parsed = parse_value(value, annotation, key) if from_text else _coerce(value, annotation, key)
            setattr(target, part, parsed)
            return
        if part in PARAM_GROUPS.values():
            # Method parameters are checked later against the chosen method's Params.
            getattr(target, part)[".".join(parts[depth + 1:])] = value
            return
        target = getattr(target, part)


def parse_sets(pairs: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        if "=" not in pair:
            raise HarnessError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out.append((key.strip(), value.strip()))
    return out


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def resolve_config(
    task: str,
    method: str,
    profile: str = "cpu",
    seed: int | None = None,
    sets: list[tuple[str, str]] | tuple = (),
    overrides: dict[str, Any] | None = None,
    check: bool = True,
) -> RunConfig:
    """Profile → task overrides → ``overrides`` (Python values) → ``--set`` pairs (text), all checked.

    ``check=False`` skips the checks that concern running it (value ranges, the data source), for
    readers that only compare a run's config with its defaults."""
    from .errors import UnknownNameError
    from .registry import METHODS, TASKS

    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, list(PROFILES))
    task_cls = TASKS.get(task)
    task_cls.check_declaration()
    method_cls = METHODS.get(method)
    cfg = RunConfig(task=task, method=method, profile=profile)
    for key, value in PROFILES[profile].items():
        set_path(cfg, key, value, from_text=False)
    for key, value in task_cls.profile_overrides(profile).items():
        set_path(cfg, key, value, from_text=False)
    for key, value in (overrides or {}).items():
        set_path(cfg, key, value, from_text=False)
    for key, value in sets:
        if key in ("task", "method", "profile"):
            raise HarnessError(f"--set {key}=...: choose the {key} with --{key}")
        set_path(cfg, key, value, from_text=True)
    if seed is not None:
        cfg.seed = seed
    # Method parameters: defaults of the method (some come from the task), then the user's.
    cfg.method_params = method_cls.resolve_params(cfg.method_params, task_cls, profile)
    cfg.predistill_params = predistill_overrides(cfg.predistill_params, method_cls, task_cls, profile)
    if check:
        check_config(cfg)
        declared = getattr(task_cls, "data_sources", ())
        if declared and cfg.data.source not in declared:
            hint = " (--data-dir DIR)" if "local" in declared else ""
            raise HarnessError(f"data.source={cfg.data.source!r}: task {task!r} reads only {', '.join(declared)}{hint}")
        method_cls(cfg.method_params).check_declaration()   # its parameters' ranges, then its declaration
    return cfg

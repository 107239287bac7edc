"""Typed run configuration, profiles and ``--set key=value`` overrides.

A run is fully described by one :class:`RunConfig`. Profiles (``ci``, ``cpu``,
``paper``) only change sizes and sources; a task may add its own overrides on top
(e.g. its JS β or its decoding). ``--set`` then overrides any field by dotted path,
with the value parsed and checked against the field's declared type.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import HarnessError


@dataclass
class DataConfig:
    source: str = "embedded"          # embedded | local | hub
    data_dir: str | None = None       # folder of the original release files (source=local)
    hub_id: str | None = None         # None → the task's default hub id
    revision: str | None = None       # None → the task's default revision
    seed: int = 0                     # seed of the embedded twin generator
    train_size: int = 1500            # embedded twin: number of inputs per split
    validation_size: int = 150
    test_size: int = 300
    max_train_examples: int | None = None   # cap on training examples (any source)
    max_eval_examples: int | None = None    # cap on validation/test inputs (any source)
    train_subset: int | None = None   # seeded random subset of this many training inputs (WMT paper: 100,000)


@dataclass
class TokenizerConfig:
    vocab_size: int = 1500            # trained on the training split (embedded models)
    max_source_tokens: int = 128      # longer inputs are truncated (and counted)
    max_target_tokens: int = 64


@dataclass
class ModelConfig:
    """The teacher. ``pretrained`` set → ``from_pretrained(pretrained)``; else built from this config."""

    family: str = "t5"                # t5 | bart | gpt2 (decoder-only: decoder_layers = its depth)
    pretrained: str | None = None
    trust_remote_code: bool = False   # run a hub model's own Python code; off unless the user asks (--trust-remote-code)
    d_model: int = 128
    encoder_layers: int = 3
    decoder_layers: int = 3
    heads: int = 4
    ffn_dim: int = 512
    dropout: float = 0.0              # the twin is regular enough; dropout cost a third of T5's step time on CPU
    max_positions: int = 256


@dataclass
class StudentConfig:
    """The student copies alternating teacher layers (PAPER.md §1)."""

    encoder_layers: int = 2
    decoder_layers: int = 1


@dataclass
class TrainConfig:
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 5e-4
    warmup_ratio: float = 0.05
    grad_clip: float = 1.0
    optimizer: str = "adamw"          # adamw | adafactor
    evals_per_epoch: float = 2.0      # validation checks for checkpoint selection (PAPER: every 0.3–0.5 epoch); 0: none
    select_best: bool = True          # False: keep the last checkpoint (dialogue)
    max_steps: int | None = None
    precision: str = "no"            # no | fp16 | bf16: mixed precision through Accelerate


@dataclass
class DecodeConfig:
    num_beams: int = 1
    do_sample: bool = False
    top_k: int | None = None
    top_p: float | None = None
    length_penalty: float = 1.0
    max_new_tokens: int = 64
    min_new_tokens: int = 0
    batch_size: int = 64


@dataclass
class RunConfig:
    task: str = "dart"
    method: str = "tvd"
    profile: str = "cpu"
    seed: int = 42                    # the method stage's seed
    upstream_seed: int | None = 42    # teacher, pseudo-labels, pre-distill; None → use ``seed`` (no sharing)
    device: str = "auto"              # auto | cpu | cuda | cuda:N | mps
    results_dir: str = "results"
    checkpoint_every: int = 100       # training steps between resumable checkpoints (0: none); not part of a run's identity
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    teacher: ModelConfig = field(default_factory=ModelConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    # The teacher improves monotonically over its 6 epochs here: no validation, keep the last checkpoint.
    teacher_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=6, lr=3e-3, evals_per_epoch=0,
                                                                           select_best=False))
    student_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2.5, lr=1e-3, evals_per_epoch=1))  # pre-distill, MLE
    kd_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, lr=3e-4))        # every KD method
    pseudo_labels: DecodeConfig = field(default_factory=lambda: DecodeConfig(num_beams=5))         # offline teacher outputs
    # Online samples: top-k sampling here; the paper profile uses sampling beam search (5 beams), 4× the cost on CPU.
    online_sampling: DecodeConfig = field(default_factory=lambda: DecodeConfig(num_beams=1, do_sample=True, top_k=30,
                                                                               max_new_tokens=48))
    # Checkpoints are selected with the decoding that the test uses: with greedy selection the
    # chosen checkpoints were not the best under beam search (measured on the cpu profile).
    selection_decode: DecodeConfig = field(default_factory=lambda: DecodeConfig(num_beams=5))     # validation
    eval_decode: DecodeConfig = field(default_factory=lambda: DecodeConfig(num_beams=5))          # test
    # TeacherDist (PAPER.md Table 3): distinct bigrams over this many ancestral teacher samples per test input.
    teacher_dist_samples: int = 5
    teacher_dist_sampling: DecodeConfig = field(default_factory=lambda: DecodeConfig(num_beams=1, do_sample=True))
    method_params: dict = field(default_factory=dict)   # checked against the method's Params


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
        "teacher_dist_sampling.max_new_tokens": 16,
    },
    "cpu": {},  # the dataclass defaults are the cpu profile
    "paper": {
        # Sizes of the paper (PAPER.md §3); tasks name their hub teacher and data.
        "data.source": "hub",
        "teacher_train.epochs": 3, "teacher_train.batch_size": 8, "teacher_train.lr": 3e-5,
        "student_train.epochs": 28, "student_train.batch_size": 8, "student_train.lr": 3e-4,
        "kd_train.epochs": 12, "kd_train.batch_size": 8, "kd_train.lr": 3e-5,
        "kd_train.evals_per_epoch": 3,
        "tokenizer.max_source_tokens": 1024, "tokenizer.max_target_tokens": 128,
        "pseudo_labels.max_new_tokens": 128, "online_sampling.max_new_tokens": 128,
        "eval_decode.max_new_tokens": 128, "selection_decode.max_new_tokens": 128,
        "teacher_dist_sampling.max_new_tokens": 128,
        "selection_decode.num_beams": 5, "online_sampling.num_beams": 5,
        "teacher.dropout": 0.1,
    },
}


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
    parts = key.split(".")
    if parts[0] == "method" and len(parts) > 1:  # `--set method.beta=0.5` reads better than method_params
        parts = ["method_params", *parts[1:]]
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
        if part == "method_params":
            # Method parameters are checked later against the chosen method's Params.
            target.method_params[".".join(parts[depth + 1:])] = value
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
) -> RunConfig:
    """Profile → task overrides → ``overrides`` (Python values) → ``--set`` pairs (text), all checked."""
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
    cfg.method_params = method_cls.resolve_params(cfg.method_params, task_cls)
    return cfg

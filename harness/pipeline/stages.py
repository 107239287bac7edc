"""How each kind of stage is built from its spec and its inputs, and what it hands on once it exists.

``STAGES[spec.stage]`` is a :class:`Stage` of two pure functions of the stage's keyed config
(``spec.config``, seen through :class:`KeyedConfig`) and of what its upstream stages returned
(:class:`StageInputs`):

* ``build(spec, inputs, context)`` returns the function that writes the stage into a fresh folder
  (:meth:`harness.store.cache.StageCache.get_or_build` calls it only when no complete copy exists);
* ``load(spec, inputs, context, path)`` turns the stage's folder into what later stages read
  (the tokenised splits, the teacher, the pseudo-labels, the stored teacher rows); a stage without
  one hands on its folder.

Neither sees the cell's :class:`~harness.config.RunConfig`: every setting a stage reads is in its
config, so in its key. :class:`StageContext` carries what a build runs with that is not configuration.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pandas as pd
import torch

from .. import distributed
from .. import evaluate as ev
from ..config import DecodeConfig, ModelConfig, TrainConfig
from ..data import TokenizedSplit, as_target, template_prefix, tokenize_split, with_source_cap
from ..lm import build_model, language_model, load_model, load_tokenizer, make_student, train_tokenizer
from ..methods.baselines import MLE
from ..progress import note as log
from ..task import Example
from ..train import train
from ..store.labels import EVALUATION, PSEUDO_LABELS, TEACHER, TEACHER_OUTPUTS, TOKENIZER
from .graph import CellPlan, StageSpec, data_split

if TYPE_CHECKING:
    from ..accounting import ComputeMeter
    from ..checkpoint import TrainingCheckpoints
    from ..methods.topk import TopK
    from ..task import Task


# ---------------------------------------------------------------- what a build reads
class UnkeyedField(KeyError):
    """A stage read a config field its key does not hold."""

    def __str__(self) -> str:
        return self.args[0]


class KeyedConfig(Mapping):
    """A read-only view of a stage's keyed config (``spec.config``): reading a field it does not hold raises
    :class:`UnkeyedField` (``get(name, default)`` is allowed: a field left out of the config is keyed by its
    absence, as ``rows`` is at its default), writing is impossible, and nested mappings are views too."""

    def __init__(self, config: Mapping, where: str = "config"):
        self._config, self._where = config, where

    def __getitem__(self, name: str) -> Any:
        if name not in self._config:
            raise UnkeyedField(f"{self._where} has no field {name!r}: a stage reads only what its key holds "
                               f"(it holds {', '.join(sorted(self._config)) or 'nothing'})")
        value = self._config[name]
        return KeyedConfig(value, f"{self._where}.{name}") if isinstance(value, Mapping) else value

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._config else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._config)

    def __len__(self) -> int:
        return len(self._config)

    def plain(self) -> dict:
        """A plain copy of every field (to make a settings object of: ``TrainConfig(**config["train"].plain())``)."""
        return copy.deepcopy(dict(self._config))

    def __repr__(self) -> str:
        return f"KeyedConfig({self._config!r})"


def keyed(spec: StageSpec) -> StageSpec:
    """``spec`` as a build sees it: its config through :class:`KeyedConfig`, no training schedule object (a
    student reads its schedule from ``config["train"]``)."""
    return replace(spec, config=KeyedConfig(spec.config, f"the {spec.label} stage's config"), schedule=None)


@dataclass(frozen=True)
class TokenizedData:
    """What the tokenizer stage hands on: the tokenizer and every split tokenised with it."""

    tokenizer: Any
    splits: Mapping[str, TokenizedSplit]


@dataclass(frozen=True)
class StageInputs:
    """What the stages a stage depends on (its ``inputs``, and theirs in turn: all of them are in its key)
    returned; a field none of them gives stays empty."""

    examples: Mapping[str, list[Example]] = field(default_factory=dict)   # data: split → examples (keyed splits)
    tokenizer: Any = None                                                 # tokenizer stage
    splits: Mapping[str, TokenizedSplit] = field(default_factory=dict)    # tokenizer stage: split → tokenised
                                                                          # (the keyed splits)
    teacher: Any = None                                                   # teacher stage: the loaded teacher
    pseudo_labels: list[list[int]] | None = None     # pseudo-label stage: the offline output of each training example
    stored_teacher: Mapping[str, list["TopK"]] = field(default_factory=dict)   # teacher-output stores, by source
    predistill: Path | None = None           # the pre-distilled student's folder (a student that starts from it)
    model: Path | None = None                # the evaluated student's folder (an evaluation)
    teacher_evaluation: Path | None = None   # the teacher's evaluation folder (a student's evaluation)

    def training_split(self) -> TokenizedSplit:
        """The training split with what this stage's inputs attach to it: the offline outputs, the stored rows."""
        split = self.splits["train"]
        if self.pseudo_labels is not None:
            split = split.with_teacher_outputs(self.pseudo_labels)
        for source, rows in self.stored_teacher.items():
            split = split.with_stored_teacher(source, rows)
        return split


DATA = "data"   # the pipeline's output of the data: split → examples (each split enters a plan as data/<split>)
#: the input names whose stage hands on its folder (each the StageInputs field of that name)
FOLDER_INPUTS = ("predistill", "model", "teacher_evaluation")


def gather_inputs(plan: CellPlan, spec: StageSpec, outputs: Mapping[str, Any]) -> StageInputs:
    """The :class:`StageInputs` of ``spec``: the outputs (label → what the stage handed on; ``"data"``: examples by
    split) of the stages it depends on, directly or through another; folders only of its direct inputs. Of the
    data, only the splits its key holds (``data/<split>``, its own or an upstream stage's), raw and tokenised."""
    fields: dict[str, Any] = {"stored_teacher": {}}
    for name, label in spec.inputs.items():
        if name in FOLDER_INPUTS and isinstance(outputs[label], Path):
            fields[name] = outputs[label]
    keyed_splits, seen, todo = set(), set(), list(spec.inputs.values())
    while todo:
        label = todo.pop()
        if label in seen:
            continue
        seen.add(label)
        split = data_split(label)
        if split is not None:
            keyed_splits.add(split)
            continue
        upstream = plan[label]
        todo += upstream.inputs.values()
        if upstream.stage == TOKENIZER:
            fields["tokenizer"], fields["splits"] = outputs[label].tokenizer, outputs[label].splits
        elif upstream.stage == TEACHER:
            fields["teacher"] = outputs[label]
        elif upstream.stage == PSEUDO_LABELS:
            fields["pseudo_labels"] = outputs[label]
        elif upstream.stage == TEACHER_OUTPUTS:
            fields["stored_teacher"][upstream.config["source"]] = outputs[label]
    fields["examples"] = {s: ex for s, ex in outputs.get(DATA, {}).items() if s in keyed_splits}
    fields["splits"] = {s: sp for s, sp in fields.get("splits", {}).items() if s in keyed_splits}
    return StageInputs(**fields)


@dataclass(frozen=True)
class StageContext:
    """What a build runs with that is not configuration, and so not in its key.

    None of it changes a number a stage computes: ``device`` (its type is in the teacher's key, so in every
    key downstream of it; the index is not), ``meter`` (counts tokens), ``checkpoints`` (a resumed build ends
    bit for bit where an uninterrupted one does, so ``checkpoint_every`` is no part of a key), ``task`` (for its
    code only, scoring and TeacherDist's cut, which the task's package digest in the data keys covers; its
    declarations that a stage reads, such as the selection metric and the source truncation, are in the config).
    The torch thread count is not keyed either: on CPU it may move the last bits (``stage.json`` records it).
    ``report(model, rows)``: hands a training stage's new curve rows to the run's trackers (:mod:`harness.tracking`),
    which only read them.
    """

    device: torch.device
    meter: "ComputeMeter"
    task: "Task"
    checkpoints: Callable[[], "TrainingCheckpoints | None"] = lambda: None
    report: Callable[[str, list[dict]], None] = lambda model, rows: None


@dataclass(frozen=True)
class Stage:
    """How one kind of stage is built (``build(spec, inputs, context)`` → the writer of its folder) and what it hands
    on (``load(spec, inputs, context, path)``; None: its folder). ``trains``: its build trains a model, which
    data-parallel processes do together (every rank runs the build, rank 0's folder is kept); ``decodes``: its
    build decodes, which they split among them (:func:`harness.evaluate.decode`: every rank runs the build, rank
    0's folder is kept); the other stages are built by rank 0 alone while the others wait."""

    build: Callable[[StageSpec, StageInputs, StageContext], Callable[[Path], dict | None]]
    load: Callable[[StageSpec, StageInputs, StageContext, Path], Any] | None = None
    trains: bool = False
    decodes: bool = False

    @property
    def collective(self) -> bool:
        """Whether every data-parallel rank runs the build (its training steps or decoding are collective)."""
        return self.trains or self.decodes


# ---------------------------------------------------------------- tokenizer
def build_tokenizer(spec: StageSpec, inputs: StageInputs, context: StageContext):
    config = spec.config

    def build(out: Path):
        if config["pretrained"]:
            tok = load_tokenizer(config["pretrained"], config.get("trust_remote_code", False))
        else:
            examples = inputs.examples["train"]
            tok = train_tokenizer(sorted({e.source for e in examples} | {e.target for e in examples}),
                                  config["tokenizer"]["vocab_size"])
        tok.save_pretrained(str(out))
        return {"vocab_size": len(tok)}

    return build


def load_tokenized(spec: StageSpec, inputs: StageInputs, context: StageContext, path: Path) -> TokenizedData:
    """Tokenise every split (and say how many inputs and targets were cut)."""
    tokenizer = load_tokenizer(path)
    t = spec.config["tokenizer"]
    side = spec.config.get("source_truncation", "right")
    splits = {s: tokenize_split(ex, tokenizer, t["max_source_tokens"], t["max_target_tokens"], side)
              for s, ex in inputs.examples.items()}
    for s, sp in splits.items():
        if sp.truncated_sources or sp.truncated_targets:
            log(f"[data] {s}: truncated {sp.truncated_sources} sources to {t['max_source_tokens']} tokens and "
                f"{sp.truncated_targets} targets to {t['max_target_tokens']} tokens")
    return TokenizedData(tokenizer, splits)


# ---------------------------------------------------------------- teacher
def build_teacher(spec: StageSpec, inputs: StageInputs, context: StageContext):
    config = spec.config

    def build(out: Path):
        torch.manual_seed(config["seed"])   # the initial weights belong to the key, whichever cell builds it
        model = context.meter.track(build_model(ModelConfig(**config["teacher"].plain()), inputs.tokenizer)
                                    .to(context.device), "teacher")
        lm = language_model(model, inputs.tokenizer)
        info = {"parameters": sum(p.numel() for p in model.parameters())}
        schedule = TrainConfig(**config["train"].plain())
        if schedule.epochs > 0:
            result = train(lm, MLE(), inputs.splits["train"], schedule, validate=validator(spec, inputs, context),
                           seed=config["seed"], device=context.device, desc="teacher",
                           checkpoints=context.checkpoints(), report=functools.partial(context.report, spec.model))
            save_curves(out, result.curves)
            info.update(steps=result.steps, best_step=result.best_step, best_validation=result.best_score,
                        **parallel_info(result))
        model.save_pretrained(str(out))
        return info

    return build


def load_teacher(spec: StageSpec, inputs: StageInputs, context: StageContext, path: Path):
    teacher = load_lm(path, inputs.tokenizer, context.device)
    context.meter.track(teacher.model, "teacher")
    return teacher


# ---------------------------------------------------------------- pseudo-labels
def build_pseudo_labels(spec: StageSpec, inputs: StageInputs, context: StageContext):
    """The teacher's beam-search outputs on the training sources (offline prefixes, PAPER.md §2)."""
    train_split = inputs.splits["train"]

    def build(out: Path):
        unique = {}
        for e, ids in zip(train_split.examples, train_split.sources):
            unique.setdefault(e.source, ids)
        sources = list(unique)
        split = TokenizedSplit([Example(str(i), s, "", ()) for i, s in enumerate(sources)],
                               [unique[s] for s in sources], [[] for _ in sources])
        outputs = ev.decode(inputs.teacher, split, DecodeConfig(**spec.config["decode"].plain()), context.device,
                            desc="pseudo-labels")
        write_parquet(out / "pseudo_labels.parquet", pd.DataFrame(
            {"source": sources, "tokens": outputs, "text": ev.texts(inputs.teacher, outputs)}))
        return {"inputs": len(sources)}

    return build


def load_pseudo_labels(spec: StageSpec, inputs: StageInputs, context: StageContext, path: Path) -> list[list[int]]:
    """The offline output of each training example: its source's, cut to ``truncation`` tokens (EOS if empty)."""
    table = pd.read_parquet(path / "pseudo_labels.parquet")
    by_source = {s: [int(t) for t in toks] for s, toks in zip(table["source"], table["tokens"])}
    max_t, prefix = spec.config["truncation"], template_prefix(inputs.tokenizer)
    return [as_target(by_source[e.source], prefix, max_t, inputs.tokenizer.eos_token_id)
            for e in inputs.splits["train"].examples]


# ---------------------------------------------------------------- teacher outputs (the store)
TEACHER_OUTPUTS_FILE = "teacher_outputs.safetensors"


def store_prefixes(inputs: StageInputs, source: str) -> list[list[int]]:
    """The fixed prefixes of ``source`` on the training rows (ground truth, or the offline outputs)."""
    return inputs.splits["train"].targets if source == "ground_truth" else inputs.pseudo_labels


def teacher_rows(teacher, split: TokenizedSplit, prefixes: list[list[int]], k: int, batch_size: int,
                 device) -> tuple[list["TopK"], list[int]]:
    """The teacher's top-k form (:mod:`harness.methods.topk`) at every position of ``prefixes`` (one per row of
    ``split``), each distinct (input, prefix) pair computed once: (distinct rows [T_i, k], row of each example)."""
    from ..data import make_batch
    from ..methods.topk import TopK, top_k

    distinct: dict[tuple, int] = {}
    row_of_example = [distinct.setdefault((tuple(src), tuple(p)), len(distinct))
                      for src, p in zip(split.sources, prefixes)]
    first = {}
    for example, row in enumerate(row_of_example):
        first.setdefault(row, example)
    rows = TokenizedSplit([split.examples[i] for i in first.values()], [split.sources[i] for i in first.values()],
                          [prefixes[i] for i in first.values()])
    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = make_batch(rows, list(range(start, min(start + batch_size, len(rows)))),
                               teacher.pad_id).to(device)
            logits = teacher.forward(teacher.encode(batch.source_ids, batch.source_mask), batch.target).logits
            dist = top_k(logits, k)
            for i, n in enumerate(batch.target.mask.sum(1).tolist()):
                out.append(TopK(dist.indices[i, :n].int().cpu(), dist.log_probs[i, :n].cpu(),
                                dist.tail_log_mass[i, :n].float().cpu(), dist.vocab_size))
    return out, row_of_example


def build_teacher_outputs(spec: StageSpec, inputs: StageInputs, context: StageContext):
    """One fixed prefix source's teacher distributions on the training rows (:func:`teacher_rows`, ``batch_size``
    rows at a time), in one safetensors file: float32 at k = V (exact), float16 log-probabilities below it (the
    truncation's error is the larger one)."""
    from safetensors.torch import save_file

    source, k, batch_size = spec.config["source"], spec.config["k"], spec.config["batch_size"]

    def build(out: Path):
        rows, row_of_example = teacher_rows(inputs.teacher, inputs.splits["train"], store_prefixes(inputs, source), k,
                                            batch_size, context.device)
        vocab, kept = rows[0].vocab_size, rows[0].k
        values = torch.cat([r.log_probs for r in rows]).float()
        lengths = torch.tensor([r.indices.shape[0] for r in rows], dtype=torch.int64)
        save_file({"indices": torch.cat([r.indices for r in rows]),
                   "log_probs": values if kept == vocab else values.half(),
                   "tail_log_mass": torch.cat([r.tail_log_mass for r in rows]),
                   "offsets": torch.nn.functional.pad(lengths.cumsum(0), (1, 0)),
                   "row_of_example": torch.tensor(row_of_example, dtype=torch.int64)},
                  str(out / TEACHER_OUTPUTS_FILE), metadata={"vocab_size": str(vocab), "source": source})
        size, positions = (out / TEACHER_OUTPUTS_FILE).stat().st_size, int(lengths.sum())
        return {"distinct_rows": len(rows), "positions": positions, "k": kept, "vocab_size": vocab,
                "bytes": size, "bytes_per_token": size / max(positions, 1)}

    return build


def load_teacher_outputs(spec: StageSpec, inputs: StageInputs, context: StageContext, path: Path) -> list["TopK"]:
    """The stored rows of this prefix source, one per training example (checked against its prefixes)."""
    from safetensors import safe_open

    from ..errors import HarnessError
    from ..methods.topk import TopK

    source = spec.config["source"]
    with safe_open(str(path / TEACHER_OUTPUTS_FILE), "pt") as f:
        vocab = int(f.metadata()["vocab_size"])
        stored = {name: f.get_tensor(name) for name in f.keys()}
    offsets, row_of_example = stored["offsets"].tolist(), stored["row_of_example"].tolist()
    rows = [TopK(stored["indices"][a:b], stored["log_probs"][a:b], stored["tail_log_mass"][a:b], vocab)
            for a, b in zip(offsets[:-1], offsets[1:])]
    prefixes = store_prefixes(inputs, source)
    if len(row_of_example) != len(prefixes) or any(rows[r].indices.shape[0] != len(p)
                                                   for r, p in zip(row_of_example, prefixes)):
        raise HarnessError(f"the teacher-output store {path} does not match the training split's "
                           f"{source} prefixes")
    return [rows[r] for r in row_of_example]


# ---------------------------------------------------------------- students (pre-distill and the method)
def build_student(spec: StageSpec, inputs: StageInputs, context: StageContext):
    """Train a student with the method of ``spec`` (its class; its parameters from the config) on the training
    split with what this stage's inputs attach to it (:meth:`StageInputs.training_split`)."""
    config = spec.config
    method = type(spec.method)(config["params"].plain())

    def build(out: Path):
        if config["init"] == "layer_copy":
            model, layer_map = make_student(inputs.teacher.model, config["student"]["encoder_layers"],
                                            config["student"]["decoder_layers"])
        else:
            model = load_lm(inputs.predistill, inputs.tokenizer, context.device).model
            layer_map = json.loads((inputs.predistill / "layer_map.json").read_text())
        model = context.meter.track(model.to(context.device), "student")
        lm = language_model(model, inputs.tokenizer)
        rows, val = inputs.training_split(), inputs.splits["validation"]
        cap = config.get("source_cap")
        if cap is not None:   # the method's tighter source cap (Method.source_cap): its sources tokenised again
            rows, val = (with_source_cap(split, inputs.tokenizer, cap["tokens"], cap["side"]) for split in (rows, val))
        if config.get("rows") == "per_source":
            rows = rows.one_per_source()
        result = train(lm, method, rows, TrainConfig(**config["train"].plain()),
                       teacher=inputs.teacher if method.needs_teacher else None,
                       sampling=DecodeConfig(**config["sampling"].plain()), layer_map=layer_map,
                       validate=validator(spec, inputs, context, val), seed=config["seed"], device=context.device,
                       desc=spec.label, checkpoints=context.checkpoints(),
                       teacher_mode=config.get("teacher_mode", "eval"),
                       report=functools.partial(context.report, spec.model))
        model.save_pretrained(str(out))
        (out / "layer_map.json").write_text(json.dumps(layer_map))
        save_curves(out, result.curves)
        return {"steps": result.steps, "best_step": result.best_step, "best_validation": result.best_score,
                "parameters": sum(p.numel() for p in model.parameters()), **parallel_info(result)}

    return build


# ---------------------------------------------------------------- evaluation
def build_evaluation(spec: StageSpec, inputs: StageInputs, context: StageContext):
    """Decode the test split, score it, and compute the likelihood and coverage risks: ours on the test outputs,
    the paper's on one sample per input (``risk_sampling``), for a student its token-level TVD to the teacher on
    its test outputs and the acceptance rate 1 − TVD, and for the teacher TeacherDist both ways."""
    config, test, teacher, device = spec.config, inputs.splits["test"], inputs.teacher, context.device
    is_teacher = spec.model == TEACHER

    def build(out: Path):
        lm = teacher if is_teacher else load_lm(inputs.model, inputs.tokenizer, device)
        context.meter.track(lm.model, "teacher" if is_teacher else "student")
        torch.manual_seed(config["seed"])
        start = time.time()
        outputs = ev.decode(lm, test, DecodeConfig(**config["decode"].plain()), device, desc=f"evaluate {spec.model}")
        decode_seconds = time.time() - start
        hyps = ev.texts(lm, outputs)
        scores = context.task.score(hyps, [e.references for e in test.examples])
        teacher_nll, tvd = ev.teacher_scores(teacher, None if is_teacher else lm, test, outputs, device)
        coverage = teacher_nll if is_teacher else ev.sequence_nll(lm, test, read_outputs(inputs.teacher_evaluation),
                                                                   device)
        metrics = dict(scores.corpus)
        metrics["r_llh"] = ev.per_token(teacher_nll)
        metrics["r_cvg"] = ev.per_token(coverage)
        if not is_teacher:
            metrics["tvd_token"] = ev.per_token(tvd)
            metrics["acceptance"] = 1.0 - metrics["tvd_token"]
        if is_teacher and config["teacher_dist"]["samples"] > 0:
            samples = ev.teacher_samples(lm, test, DecodeConfig(**config["teacher_dist"]["sampling"].plain()),
                                         config["teacher_dist"]["samples"], device, config["seed"])
            cut = [[context.task.teacher_dist_text(t) for t in per_input] for per_input in samples]
            per_input = {"teacher_dist": ev.distinct_bigram_scores(ev.words(samples)),
                         "teacher_dist_paper": ev.distinct_bigram_scores(ev.subwords(cut, lm.tokenizer),
                                                                         count_empty=True)}
            for name, terms in per_input.items():
                metrics[name] = ev.mean_of_terms(terms)
        else:
            per_input = {}
        torch.manual_seed(config["seed"])
        risk_samples = ev.decode(lm, test, DecodeConfig(**config["risk_sampling"].plain()), device,
                                 desc=f"risk samples {spec.model}")
        risk_teacher_nll = ev.sequence_nll(teacher, test, risk_samples, device)
        risk_coverage = risk_teacher_nll if is_teacher else ev.sequence_nll(
            lm, test, read_outputs(inputs.teacher_evaluation, RISK_SAMPLES), device)
        metrics["r_llh_paper"] = ev.per_sentence(risk_teacher_nll)
        metrics["r_cvg_paper"] = ev.per_sentence(risk_coverage)
        metrics["output_tokens"] = sum(len(o) for o in outputs) / len(outputs)
        metrics["decode_tokens_per_s"] = sum(len(o) for o in outputs) / max(decode_seconds, 1e-9)
        table = pd.DataFrame({
            "example_id": [e.id for e in test.examples], "source": [e.source for e in test.examples],
            "references": [list(e.references) for e in test.examples], "hypothesis": hyps,
            "output_tokens": outputs,
            "teacher_nll": [p[0] for p in teacher_nll], "n_tokens": [p[1] for p in teacher_nll],
            RISK_SAMPLES: risk_samples,
            "risk_teacher_nll": [p[0] for p in risk_teacher_nll], "risk_n_tokens": [p[1] for p in risk_teacher_nll],
            **{f"score_{k}": v for k, v in scores.per_example.items()},
            # the teacher's TeacherDist terms per input (None: an input left out), for intervals over inputs
            **{f"score_{k}": [math.nan if t is None else t for t in v] for k, v in per_input.items()},
        })
        info = {"test_inputs": len(test), **parallel_decode_info(config, is_teacher)}
        if config.get("decode_seeds", 1) > 1:   # the teacher's further sampled decodings (eval_decode_seeds)
            extra = []
            for j in range(1, config["decode_seeds"]):
                torch.manual_seed(config["seed"] + j)
                extra.append(ev.texts(lm, ev.decode(lm, test, DecodeConfig(**config["decode"].plain()), device,
                                                    desc=f"evaluate {spec.model}, decoding {j + 1}")))
            table["decode_hypotheses"] = [list(h) for h in zip(*extra)]
            refs = [e.references for e in test.examples]
            corpus = [scores.corpus] + [context.task.score(h, refs).corpus for h in extra]
            info["decodings"] = {m: [c[m] for c in corpus] for m in scores.corpus}
        write_parquet(out / "examples.parquet", table)
        (out / "metrics.json").write_text(json.dumps({"metrics": metrics, "signatures": scores.signatures},
                                                     indent=2, sort_keys=True))
        return info

    return build


STAGES: dict[str, Stage] = {
    TOKENIZER: Stage(build_tokenizer, load_tokenized),
    TEACHER: Stage(build_teacher, load_teacher, trains=True),
    PSEUDO_LABELS: Stage(build_pseudo_labels, load_pseudo_labels, decodes=True),
    TEACHER_OUTPUTS: Stage(build_teacher_outputs, load_teacher_outputs),
    "student": Stage(build_student, trains=True),
    EVALUATION: Stage(build_evaluation, decodes=True),
}


# ---------------------------------------------------------------- shared helpers
def parallel_info(result) -> dict:
    """What a data-parallel training adds to its stage record: the processes and each rank's torch seed
    (nothing in one process, so one-process records stay as they were)."""
    return {"processes": result.processes, "rank_seeds": result.rank_seeds} if result.processes > 1 else {}


def parallel_decode_info(config, is_teacher: bool) -> dict:
    """What a data-parallel evaluation adds to its stage record: the processes that decoded and each rank's torch
    seed of every sampled decoding (:func:`harness.evaluate.decode`; nothing in one process)."""
    if distributed.world_size() == 1:
        return {}
    seeds = {}
    if config["risk_sampling"]["do_sample"]:
        seeds["risk_samples"] = ev.sampling_rank_seeds(config["seed"])
    dist = config.get("teacher_dist") if is_teacher else None
    if dist is not None and dist["samples"] > 0 and dist["sampling"]["do_sample"]:
        seeds["teacher_dist"] = [ev.sampling_rank_seeds(ev.teacher_sample_seed(config["seed"], k))
                                 for k in range(dist["samples"])]
    return {"processes": distributed.world_size(), "sampling_rank_seeds": seeds}


def validator(spec: StageSpec, inputs: StageInputs, context: StageContext, val: TokenizedSplit | None = None):
    """Checkpoint selection: the config's selection metric (``selection_metric``, oriented so that higher is
    better) of the validation split (``val``: that split tokenised otherwise) decoded with ``selection``."""
    decode = DecodeConfig(**spec.config["selection"].plain())
    metric = spec.config["selection_metric"]["name"]
    sign = 1.0 if spec.config["selection_metric"]["higher_is_better"] else -1.0
    val = inputs.splits["validation"] if val is None else val

    def validate(lm) -> float:
        outputs = ev.decode(lm, val, decode, context.device, desc="validate")
        scores = context.task.score(ev.texts(lm, outputs), [e.references for e in val.examples])
        return sign * scores.corpus[metric]

    return validate


def load_lm(path: Path, tokenizer, device):
    model = load_model(path).to(device)
    model.eval()
    return language_model(model, tokenizer)


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(path, index=False)


def save_curves(out: Path, curves: list[dict]) -> None:
    write_parquet(out / "curves.parquet", pd.DataFrame(curves, columns=["step", "epoch", "split", "name", "value"]))


#: the column of an evaluation's examples.parquet that holds its risk samples (token ids)
RISK_SAMPLES = "risk_sample_tokens"


def read_outputs(path: Path, column: str = "output_tokens") -> list[list[int]]:
    """Token ids an evaluation wrote: its test outputs, or its risk samples."""
    table = pd.read_parquet(path / "examples.parquet", columns=[column])
    return [[int(t) for t in toks] for toks in table[column]]

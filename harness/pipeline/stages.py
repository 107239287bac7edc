"""How each kind of stage is built, and what a run takes from a stage once it exists.

``STAGES[spec.stage]`` is ``(build, use)``: ``build(run, spec)`` returns the function that writes
the stage into a fresh folder (:meth:`harness.store.cache.StageCache.get_or_build` calls it only
when no complete copy exists); ``use(run, spec, result)``, where given, loads what later stages
need (the tokenised splits, the teacher, the pseudo-labels). ``run`` is the
:class:`~harness.pipeline.run.Pipeline` of the cell: its config, task, device, data and the
stages built so far, by label.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from .. import evaluate as ev
from ..data import TokenizedSplit, as_target, template_prefix, tokenize_split, with_source_cap
from ..lm import build_model, language_model, load_model, load_tokenizer, make_student, train_tokenizer
from ..methods.baselines import MLE
from ..progress import note as log
from ..task import Example
from ..train import train
from ..store.labels import TEACHER
from .graph import StageSpec


# ---------------------------------------------------------------- tokenizer
def build_tokenizer(run, spec: StageSpec):
    cfg = run.cfg

    def build(out: Path):
        if cfg.teacher.pretrained:
            tok = load_tokenizer(cfg.teacher.pretrained, cfg.teacher.trust_remote_code)
        else:
            examples = run.examples["train"]
            tok = train_tokenizer(sorted({e.source for e in examples} | {e.target for e in examples}),
                                  cfg.tokenizer.vocab_size)
        tok.save_pretrained(str(out))
        return {"vocab_size": len(tok)}

    return build


def use_tokenizer(run, spec: StageSpec, result) -> None:
    """Tokenise every split (and say how many inputs and targets were cut)."""
    run.tokenizer = load_tokenizer(result.path)
    t = run.cfg.tokenizer
    side = run.task.source_truncation
    run.splits = {s: tokenize_split(ex, run.tokenizer, t.max_source_tokens, t.max_target_tokens, side)
                  for s, ex in run.examples.items()}
    for s, sp in run.splits.items():
        if sp.truncated_sources or sp.truncated_targets:
            log(f"[data] {s}: truncated {sp.truncated_sources} sources to {t.max_source_tokens} tokens and "
                f"{sp.truncated_targets} targets to {t.max_target_tokens} tokens")


# ---------------------------------------------------------------- teacher
def build_teacher(run, spec: StageSpec):
    cfg = run.cfg

    def build(out: Path):
        torch.manual_seed(run.plan.upstream_seed)   # the initial weights belong to the key, whichever cell builds it
        model = run.meter.track(build_model(cfg.teacher, run.tokenizer).to(run.device), "teacher")
        lm = language_model(model, run.tokenizer)
        info = {"parameters": sum(p.numel() for p in model.parameters())}
        if cfg.teacher_train.epochs > 0:
            result = train(lm, MLE(), run.splits["train"], cfg.teacher_train, validate=validator(run),
                           seed=run.plan.upstream_seed, device=run.device, desc="teacher",
                           checkpoints=run.checkpoints())
            save_curves(out, result.curves)
            info.update(steps=result.steps, best_step=result.best_step, best_validation=result.best_score)
        model.save_pretrained(str(out))
        return info

    return build


def use_teacher(run, spec: StageSpec, result) -> None:
    run.teacher = load_lm(run, result.path)
    run.meter.track(run.teacher.model, "teacher")


# ---------------------------------------------------------------- pseudo-labels
def build_pseudo_labels(run, spec: StageSpec):
    """The teacher's beam-search outputs on the training sources (offline prefixes, PAPER.md §2)."""
    train_split = run.splits["train"]

    def build(out: Path):
        unique = {}
        for e, ids in zip(train_split.examples, train_split.sources):
            unique.setdefault(e.source, ids)
        sources = list(unique)
        split = TokenizedSplit([Example(str(i), s, "", ()) for i, s in enumerate(sources)],
                               [unique[s] for s in sources], [[] for _ in sources])
        outputs = ev.decode(run.teacher, split, run.cfg.pseudo_labels, run.device, desc="pseudo-labels")
        write_parquet(out / "pseudo_labels.parquet", pd.DataFrame(
            {"source": sources, "tokens": outputs, "text": ev.texts(run.teacher, outputs)}))
        return {"inputs": len(sources)}

    return build


def use_pseudo_labels(run, spec: StageSpec, result) -> None:
    train_split = run.splits["train"]
    table = pd.read_parquet(result.path / "pseudo_labels.parquet")
    by_source = {s: [int(t) for t in toks] for s, toks in zip(table["source"], table["tokens"])}
    max_t, prefix = run.cfg.tokenizer.max_target_tokens, template_prefix(run.tokenizer)
    train_split.teacher_outputs = [as_target(by_source[e.source], prefix, max_t, run.tokenizer.eos_token_id)
                                   for e in train_split.examples]


# ---------------------------------------------------------------- teacher outputs (the store)
TEACHER_OUTPUTS_FILE = "teacher_outputs.safetensors"


def store_prefixes(split: TokenizedSplit, source: str) -> list[list[int]]:
    """The fixed prefixes of ``source`` on the rows of ``split`` (ground truth, or the offline outputs)."""
    return split.targets if source == "ground_truth" else split.teacher_outputs


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


def build_teacher_outputs(run, spec: StageSpec):
    """One fixed prefix source's teacher distributions on the training rows (:func:`teacher_rows`), in one
    safetensors file: float32 at k = V (exact), float16 log-probabilities below it (the truncation's error is
    the larger one)."""
    from safetensors.torch import save_file

    train_split, source, k = run.splits["train"], spec.config["source"], spec.config["k"]

    def build(out: Path):
        rows, row_of_example = teacher_rows(run.teacher, train_split, store_prefixes(train_split, source), k,
                                            run.cfg.kd_train.batch_size, run.device)
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


def use_teacher_outputs(run, spec: StageSpec, result) -> None:
    """Give the training split the stored rows of this prefix source, one per example (checked against it)."""
    from safetensors import safe_open

    from ..errors import HarnessError
    from ..methods.topk import TopK

    train_split, source = run.splits["train"], spec.config["source"]
    with safe_open(str(result.path / TEACHER_OUTPUTS_FILE), "pt") as f:
        vocab = int(f.metadata()["vocab_size"])
        stored = {name: f.get_tensor(name) for name in f.keys()}
    offsets, row_of_example = stored["offsets"].tolist(), stored["row_of_example"].tolist()
    rows = [TopK(stored["indices"][a:b], stored["log_probs"][a:b], stored["tail_log_mass"][a:b], vocab)
            for a, b in zip(offsets[:-1], offsets[1:])]
    prefixes = store_prefixes(train_split, source)
    if len(row_of_example) != len(prefixes) or any(rows[r].indices.shape[0] != len(p)
                                                   for r, p in zip(row_of_example, prefixes)):
        raise HarnessError(f"the teacher-output store {result.path} does not match the training split's "
                           f"{source} prefixes")
    train_split.stored_teacher[source] = [rows[r] for r in row_of_example]


# ---------------------------------------------------------------- students (pre-distill and the method)
def build_student(run, spec: StageSpec):
    cfg, method = run.cfg, spec.method

    def build(out: Path):
        if spec.config["init"] == "layer_copy":
            model, layer_map = make_student(run.teacher.model, cfg.student.encoder_layers, cfg.student.decoder_layers)
        else:
            init = run.stages[spec.inputs["predistill"]].path
            model = load_lm(run, init).model
            layer_map = json.loads((init / "layer_map.json").read_text())
        model = run.meter.track(model.to(run.device), "student")
        lm = language_model(model, run.tokenizer)
        rows, val = (source_capped(run, run.splits[s], method) for s in ("train", "validation"))
        if spec.config.get("rows") == "per_source":
            rows = rows.one_per_source()
        result = train(lm, method, rows, spec.schedule,
                       teacher=run.teacher if method.needs_teacher else None, sampling=cfg.online_sampling,
                       layer_map=layer_map, validate=validator(run, val), seed=spec.config["seed"],
                       device=run.device, desc=spec.label, checkpoints=run.checkpoints(),
                       teacher_mode=cfg.teacher_mode)
        model.save_pretrained(str(out))
        (out / "layer_map.json").write_text(json.dumps(layer_map))
        save_curves(out, result.curves)
        return {"steps": result.steps, "best_step": result.best_step, "best_validation": result.best_score,
                "parameters": sum(p.numel() for p in model.parameters())}

    return build


# ---------------------------------------------------------------- evaluation
def build_evaluation(run, spec: StageSpec):
    """Decode the test split, score it, and compute the likelihood and coverage risks: ours on the test outputs,
    the paper's on one sample per input (``risk_sampling``), for a student its token-level TVD to the teacher on
    its test outputs and the acceptance rate 1 − TVD, and for the teacher TeacherDist both ways."""
    cfg, test = run.cfg, run.splits["test"]
    is_teacher = spec.model == TEACHER

    def build(out: Path):
        lm = run.teacher if is_teacher else load_lm(run, run.stages[spec.inputs["model"]].path)
        run.meter.track(lm.model, "teacher" if is_teacher else "student")
        teacher_evaluation = None if is_teacher else run.stages[spec.inputs["teacher_evaluation"]].path
        torch.manual_seed(spec.config["seed"])
        start = time.time()
        outputs = ev.decode(lm, test, cfg.eval_decode, run.device, desc=f"evaluate {spec.model}")
        decode_seconds = time.time() - start
        hyps = ev.texts(lm, outputs)
        scores = run.task.score(hyps, [e.references for e in test.examples])
        teacher_nll, tvd = ev.teacher_scores(run.teacher, None if is_teacher else lm, test, outputs, run.device)
        coverage = teacher_nll if is_teacher else ev.sequence_nll(lm, test, read_outputs(teacher_evaluation),
                                                                   run.device)
        metrics = dict(scores.corpus)
        metrics["r_llh"] = ev.per_token(teacher_nll)
        metrics["r_cvg"] = ev.per_token(coverage)
        if not is_teacher:
            metrics["tvd_token"] = ev.per_token(tvd)
            metrics["acceptance"] = 1.0 - metrics["tvd_token"]
        if is_teacher and cfg.teacher_dist_samples > 0:
            samples = ev.teacher_samples(lm, test, cfg.teacher_dist_sampling, cfg.teacher_dist_samples,
                                         run.device, run.plan.upstream_seed)
            metrics["teacher_dist"] = ev.distinct_bigram_percent(ev.words(samples))
            cut = [[run.task.teacher_dist_text(t) for t in per_input] for per_input in samples]
            metrics["teacher_dist_paper"] = ev.distinct_bigram_percent(ev.subwords(cut, lm.tokenizer),
                                                                        count_empty=True)
        torch.manual_seed(spec.config["seed"])
        risk_samples = ev.decode(lm, test, cfg.risk_sampling, run.device, desc=f"risk samples {spec.model}")
        risk_teacher_nll = ev.sequence_nll(run.teacher, test, risk_samples, run.device)
        risk_coverage = risk_teacher_nll if is_teacher else ev.sequence_nll(
            lm, test, read_outputs(teacher_evaluation, RISK_SAMPLES), run.device)
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
        })
        write_parquet(out / "examples.parquet", table)
        (out / "metrics.json").write_text(json.dumps({"metrics": metrics, "signatures": scores.signatures},
                                                     indent=2, sort_keys=True))
        return {"test_inputs": len(test)}

    return build


STAGES = {
    "tokenizer": (build_tokenizer, use_tokenizer),
    "teacher": (build_teacher, use_teacher),
    "pseudo_labels": (build_pseudo_labels, use_pseudo_labels),
    "teacher_outputs": (build_teacher_outputs, use_teacher_outputs),
    "student": (build_student, None),
    "evaluation": (build_evaluation, None),
}


# ---------------------------------------------------------------- shared helpers
def validator(run, val: TokenizedSplit | None = None):
    """Checkpoint selection: the task's selection metric on the validation split (``val``: that split tokenised
    otherwise; higher is better)."""
    metric = run.task.selection_metric
    sign = -1.0 if metric in run.task.lower_is_better else 1.0
    val = run.splits["validation"] if val is None else val

    def validate(lm) -> float:
        outputs = ev.decode(lm, val, run.cfg.selection_decode, run.device, desc="validate")
        scores = run.task.score(ev.texts(lm, outputs), [e.references for e in val.examples])
        return sign * scores.corpus[metric]

    return validate


def source_capped(run, split: TokenizedSplit, method) -> TokenizedSplit:
    """``split`` with the method's tighter source cap (:meth:`~harness.methods.base.Method.source_cap`), if any."""
    cap = method.source_cap()
    if cap is None or cap >= run.cfg.tokenizer.max_source_tokens:
        return split
    return with_source_cap(split, run.tokenizer, cap, run.task.source_truncation)


def load_lm(run, path: Path):
    model = load_model(path).to(run.device)
    model.eval()
    return language_model(model, run.tokenizer)


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

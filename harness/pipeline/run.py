"""One cell of the benchmark: task × method × seed, as a chain of cached stages.

    data → tokenizer → teacher → pseudo-labels ─┐
                          │                      ├→ student (the method) → evaluation → results/runs/<run>/
                          └→ student init → pre-distill ─┘

Each stage is a pure function of its config and its upstream stages and is cached
under a hash of both (:mod:`harness.store.cache`), so every method of a task reuses one
teacher, one set of pseudo-labels and one pre-distilled student.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from .. import evaluate as ev
from ..accounting import ComputeMeter
from ..store.cache import StageCache, StageResult
from ..config import RunConfig
from ..data import TokenizedSplit, tokenize_split
from ..train import train
from ..methods.baselines import MLE, PreDistill
from ..lm import (DECODER_ONLY_FAMILIES, Seq2SeqLM, build_model, language_model, load_model, load_tokenizer, make_student, resolve_device, train_tokenizer)
from ..errors import HarnessError
from ..registry import METHODS, TASKS
from ..task import Example


def quiet_transformers() -> None:
    """Our own progress bars say what runs; transformers' per-load bars and warnings are noise here."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Pipeline:
    def __init__(self, cfg: RunConfig):
        quiet_transformers()
        self.cfg = cfg
        self.task = TASKS.get(cfg.task)(cfg.data)
        self.method_cls = METHODS.get(cfg.method)
        self.method = self.method_cls(cfg.method_params)
        decoder_only = cfg.teacher.family in DECODER_ONLY_FAMILIES
        if decoder_only != (self.task.architecture == "decoder-only"):
            raise HarnessError(f"task {cfg.task!r} is {self.task.architecture} but teacher.family={cfg.teacher.family!r} "
                               f"is {'decoder-only' if decoder_only else 'encoder-decoder'}")
        self.device = resolve_device(cfg.device)
        self.meter = ComputeMeter()   # forward/generated tokens of teacher and students, per stage build
        self.cache = StageCache(Path(cfg.results_dir) / "cache", log, meter=self.meter)
        self.planning = False         # plan(): work out stage keys, build nothing
        self.upstream_seed = cfg.seed if cfg.upstream_seed is None else cfg.upstream_seed
        self.stages: dict[str, StageResult] = {}
        self.examples: dict[str, list[Example]] = {}

    # ------------------------------------------------------------------ data
    def load_data(self) -> None:
        """Load and check every split before anything is written."""
        cap = {"train": self.cfg.data.max_train_examples, "validation": self.cfg.data.max_eval_examples,
               "test": self.cfg.data.max_eval_examples}
        for split in ("train", "validation", "test"):
            examples = self.task.load(split)
            if split == "train" and self.cfg.data.train_subset is not None:
                examples = _seeded_subset(examples, self.cfg.data.train_subset, self.cfg.data.seed)
            if cap[split] is not None:
                examples = examples[: cap[split]]
            if not examples:
                raise HarnessError(f"task {self.cfg.task!r}: the {split} split is empty")
            self.examples[split] = examples
        digest = hashlib.sha256()
        for split, examples in self.examples.items():
            for e in examples:
                digest.update(json.dumps([split, e.source, e.target, list(e.references)]).encode())
        self.data_key = digest.hexdigest()[:16]

    # ------------------------------------------------------------------ stages
    def _stage(self, name: str, config, upstream, build, label=None) -> StageResult:
        if self.planning:   # only the key, and whether a complete copy exists
            result = self.cache.probe(name, config, upstream)
        else:
            result = self.cache.get_or_build(name, config, upstream, build, label)
        self.stages[label or name] = result
        return result

    def _checkpoints(self):
        """Resumable training checkpoints of the stage being built (kept until it completes)."""
        return self.cache.checkpoints(self.cfg.checkpoint_every)

    def tokenizer_stage(self):
        cfg = self.cfg

        def build(out: Path):
            if cfg.teacher.pretrained:
                tok = load_tokenizer(cfg.teacher.pretrained, cfg.teacher.trust_remote_code)
            else:
                train_texts = sorted({e.source for e in self.examples["train"]} | {e.target for e in self.examples["train"]})
                tok = train_tokenizer(train_texts, cfg.tokenizer.vocab_size)
            tok.save_pretrained(str(out))
            return {"vocab_size": len(tok)}

        config = {"tokenizer": asdict(cfg.tokenizer), "pretrained": cfg.teacher.pretrained}
        side = self.task.source_truncation
        if side != "right":   # keyed only when not the default, so that keys made before it stay valid
            config["source_truncation"] = side
        st = self._stage("tokenizer", config, {"data": self.data_key}, build)
        if self.planning:
            return st
        self.tokenizer = load_tokenizer(st.path)
        t = cfg.tokenizer
        self.splits = {s: tokenize_split(ex, self.tokenizer, t.max_source_tokens, t.max_target_tokens, side)
                       for s, ex in self.examples.items()}
        for s, sp in self.splits.items():
            if sp.truncated_sources or sp.truncated_targets:
                log(f"[data] {s}: truncated {sp.truncated_sources} sources to {t.max_source_tokens} tokens and "
                    f"{sp.truncated_targets} targets to {t.max_target_tokens} tokens")
        return st

    def _validator(self):
        """Checkpoint selection: the task's selection metric on the validation split (higher is better)."""
        metric = self.task.selection_metric
        sign = -1.0 if metric in self.task.lower_is_better else 1.0
        val = self.splits["validation"]

        def validate(lm: Seq2SeqLM) -> float:
            outputs = ev.decode(lm, val, self.cfg.selection_decode, self.device, desc="validate")
            scores = self.task.score(ev.texts(lm, outputs), [e.references for e in val.examples])
            return sign * scores.corpus[metric]

        return validate

    def _load_lm(self, path: Path) -> Seq2SeqLM:
        model = load_model(path).to(self.device)
        model.eval()
        return language_model(model, self.tokenizer)

    def teacher_stage(self):
        cfg = self.cfg

        def build(out: Path):
            torch.manual_seed(self.upstream_seed)   # the initial weights belong to the key, whichever cell builds it
            model = self.meter.track(build_model(cfg.teacher, self.tokenizer).to(self.device), "teacher")
            lm = language_model(model, self.tokenizer)
            info = {"parameters": sum(p.numel() for p in model.parameters())}
            if cfg.teacher_train.epochs > 0:
                result = train(lm, MLE(), self.splits["train"], cfg.teacher_train, validate=self._validator(),
                               seed=self.upstream_seed, device=self.device, desc="teacher",
                               checkpoints=self._checkpoints())
                _save_curves(out, result.curves)
                info.update(steps=result.steps, best_step=result.best_step, best_validation=result.best_score)
            model.save_pretrained(str(out))
            return info

        config = {"teacher": asdict(cfg.teacher), "train": asdict(cfg.teacher_train),
                  "selection": asdict(cfg.selection_decode), "seed": self.upstream_seed, "device": self.device.type}
        st = self._stage("teacher", config, {"tokenizer": self.stages["tokenizer"].key, "data": self.data_key}, build)
        if self.planning:
            return st
        self.teacher = self._load_lm(st.path)
        self.meter.track(self.teacher.model, "teacher")
        return st

    def pseudo_label_stage(self):
        """The teacher's beam-search outputs on the training sources (offline prefixes, PAPER.md §2)."""
        train_split = self.splits["train"]

        def build(out: Path):
            unique = {}
            for e, ids in zip(train_split.examples, train_split.sources):
                unique.setdefault(e.source, ids)
            sources = list(unique)
            split = TokenizedSplit([Example(str(i), s, "", ()) for i, s in enumerate(sources)],
                                   [unique[s] for s in sources], [[] for _ in sources])
            outputs = ev.decode(self.teacher, split, self.cfg.pseudo_labels, self.device, desc="pseudo-labels")
            _write_parquet(out / "pseudo_labels.parquet", pd.DataFrame(
                {"source": sources, "tokens": outputs, "text": ev.texts(self.teacher, outputs)}))
            return {"inputs": len(sources)}

        st = self._stage("pseudo_labels", {"decode": asdict(self.cfg.pseudo_labels)},
                         {"teacher": self.stages["teacher"].key}, build)
        if self.planning:
            return st
        table = pd.read_parquet(st.path / "pseudo_labels.parquet")
        by_source = {s: [int(t) for t in toks] for s, toks in zip(table["source"], table["tokens"])}
        max_t = self.cfg.tokenizer.max_target_tokens
        train_split.teacher_outputs = [by_source[e.source][:max_t] or [self.tokenizer.eos_token_id]
                                       for e in train_split.examples]
        return st

    def _student_stage(self, label: str, method, init: str, schedule, extra_upstream: dict):
        cfg = self.cfg

        def build(out: Path):
            if init == "layer_copy":
                model, layer_map = make_student(self.teacher.model, cfg.student.encoder_layers,
                                                cfg.student.decoder_layers)
            else:
                model = self._load_lm(self.stages["predistill"].path).model
                layer_map = json.loads((self.stages["predistill"].path / "layer_map.json").read_text())
            model = self.meter.track(model.to(self.device), "student")
            lm = language_model(model, self.tokenizer)
            teacher = self.teacher if (method.uses_teacher or "teacher_sample" in method.prefix_weights()) else None
            result = train(lm, method, self.splits["train"], schedule, teacher=teacher, sampling=cfg.online_sampling,
                           layer_map=layer_map, validate=self._validator(),
                           seed=self.upstream_seed if label == "predistill" else cfg.seed,
                           device=self.device, desc=label, checkpoints=self._checkpoints())
            model.save_pretrained(str(out))
            (out / "layer_map.json").write_text(json.dumps(layer_map))
            _save_curves(out, result.curves)
            return {"steps": result.steps, "best_step": result.best_step, "best_validation": result.best_score,
                    "parameters": sum(p.numel() for p in model.parameters())}

        config = {"method": method.name, "params": asdict(method.params), "init": init,
                  "student": asdict(cfg.student), "train": asdict(schedule),
                  "sampling": asdict(cfg.online_sampling), "selection": asdict(cfg.selection_decode),
                  "seed": self.upstream_seed if label == "predistill" else cfg.seed}
        upstream = {"teacher": self.stages["teacher"].key, **extra_upstream}
        return self._stage("student", config, upstream, build, label=label)

    def predistill_stage(self):
        # The shared pre-distilled student uses the task's defaults (α_hid differs for dialogue).
        method = (self.method if self.cfg.method == "predistill"
                  else PreDistill(PreDistill.resolve_params({}, type(self.task))))
        return self._student_stage("predistill", method, "layer_copy", self.cfg.student_train, {})

    def method_stage(self):
        if self.cfg.method == "predistill":
            self.stages["method"] = self.stages["predistill"]
            return self.stages["method"]
        init = self.method.init
        upstream = {}
        if init == "predistilled":
            upstream["predistill"] = self.stages["predistill"].key
        if "teacher_offline" in self.method.prefix_weights():
            upstream["pseudo_labels"] = self.stages["pseudo_labels"].key
        schedule = self.cfg.student_train if init == "layer_copy" else self.cfg.kd_train
        return self._student_stage("method", self.method, init, schedule, upstream)

    def evaluation_stage(self, label: str, model_stage: StageResult, is_teacher: bool = False):
        """Decode the test split, score it, and compute the likelihood and coverage risks."""
        test = self.splits["test"]

        # Sampled decoding (dialogue) must not depend on what ran before in this process.
        seed = self.cfg.seed if label == self.cfg.method else self.upstream_seed

        def build(out: Path):
            lm = self.teacher if is_teacher else self._load_lm(model_stage.path)
            self.meter.track(lm.model, "teacher" if is_teacher else "student")
            torch.manual_seed(seed)
            start = time.time()
            outputs = ev.decode(lm, test, self.cfg.eval_decode, self.device, desc=f"evaluate {label}")
            decode_seconds = time.time() - start
            hyps = ev.texts(lm, outputs)
            scores = self.task.score(hyps, [e.references for e in test.examples])
            teacher_nll = ev.sequence_nll(self.teacher, test, outputs, self.device)
            if is_teacher:
                coverage = teacher_nll
            else:
                teacher_outputs = _read_outputs(self.stages["evaluation/teacher"].path)
                coverage = ev.sequence_nll(lm, test, teacher_outputs, self.device)
            metrics = dict(scores.corpus)
            metrics["r_llh"] = ev.per_token(teacher_nll)
            metrics["r_cvg"] = ev.per_token(coverage)
            if is_teacher and self.cfg.teacher_dist_samples > 0:
                metrics["teacher_dist"] = ev.teacher_dist(lm, test, self.cfg.teacher_dist_sampling,
                                                          self.cfg.teacher_dist_samples, self.device, self.upstream_seed)
            metrics["output_tokens"] = sum(len(o) for o in outputs) / len(outputs)
            metrics["decode_tokens_per_s"] = sum(len(o) for o in outputs) / max(decode_seconds, 1e-9)
            table = pd.DataFrame({
                "example_id": [e.id for e in test.examples], "source": [e.source for e in test.examples],
                "references": [list(e.references) for e in test.examples], "hypothesis": hyps,
                "output_tokens": outputs,
                "teacher_nll": [p[0] for p in teacher_nll], "n_tokens": [p[1] for p in teacher_nll],
                **{f"score_{k}": v for k, v in scores.per_example.items()},
            })
            _write_parquet(out / "examples.parquet", table)
            (out / "metrics.json").write_text(json.dumps({"metrics": metrics, "signatures": scores.signatures},
                                                         indent=2, sort_keys=True))
            return {"test_inputs": len(test)}

        upstream = {"model": model_stage.key, "data": self.data_key}
        if not is_teacher:
            upstream["teacher_evaluation"] = self.stages["evaluation/teacher"].key
        config = {"decode": asdict(self.cfg.eval_decode), "seed": seed}
        if is_teacher:
            config["teacher_dist"] = {"samples": self.cfg.teacher_dist_samples,
                                      "sampling": asdict(self.cfg.teacher_dist_sampling)}
        return self._stage("evaluation", config, upstream, build,
                           label=f"evaluation/{label}")

    # ------------------------------------------------------------------ the whole cell
    def run(self):
        from ..store.runs import write_run

        start = time.time()
        torch.manual_seed(self.cfg.seed)
        self.load_data()
        self.tokenizer_stage()
        self.teacher_stage()
        needs_pseudo = "teacher_offline" in self.method.prefix_weights()
        if needs_pseudo:
            self.pseudo_label_stage()
        if self.method.init == "predistilled" or self.cfg.method == "predistill":
            self.predistill_stage()
        self.method_stage()
        self.evaluation_stage("teacher", self.stages["teacher"], is_teacher=True)
        evaluated = {"teacher": "evaluation/teacher"}
        if "predistill" in self.stages and self.cfg.method != "predistill":
            self.evaluation_stage("predistill", self.stages["predistill"])
            evaluated["predistill"] = "evaluation/predistill"
        self.evaluation_stage(self.cfg.method, self.stages["method"])
        evaluated[self.cfg.method] = f"evaluation/{self.cfg.method}"
        if self.planning:
            return self.stages
        return write_run(self, evaluated, time.time() - start)

    def plan(self) -> dict[str, StageResult]:
        """The stages :meth:`run` would use, by label, with their keys and whether each is cached.

        Stage keys depend on configs and upstream keys only, so they are known before
        anything is built; nothing is trained, decoded or written.
        """
        from collections import defaultdict

        self.planning = True
        self.splits = defaultdict(lambda: None)   # nothing is tokenised when planning
        try:
            return self.run()
        finally:
            self.planning = False


def _seeded_subset(examples: list[Example], size: int, seed: int) -> list[Example]:
    """``size`` training inputs drawn without replacement by ``seed`` (all references of a drawn input kept)."""
    import random

    sources = sorted({e.source for e in examples})
    if size >= len(sources):
        return examples
    keep = set(random.Random(seed).sample(sources, size))
    return [e for e in examples if e.source in keep]


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(path, index=False)


def _save_curves(out: Path, curves: list[dict]) -> None:
    _write_parquet(out / "curves.parquet", pd.DataFrame(curves, columns=["step", "epoch", "split", "name", "value"]))


def _read_outputs(path: Path) -> list[list[int]]:
    table = pd.read_parquet(path / "examples.parquet", columns=["output_tokens"])
    return [[int(t) for t in toks] for toks in table["output_tokens"]]


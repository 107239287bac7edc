"""``harness bench``: what the shared step engine saves, measured side by side.

For each method and each preset (a task-shaped configuration of random-weight models
and synthetic token batches, so no training is needed), one training step — the loss
and its backward pass; the optimiser step is the same in every mode and is left out —
is timed in three modes:

* ``fast``: :func:`harness.step.fast.method_loss`, each piece of work once per batch;
* ``reference``: :func:`harness.step.reference.reference_loss`, the paper code's structure;
* ``bare``: :func:`bare_loss`, the floor — only the model calls the method cannot avoid
  (its sampling calls, one student encoder and one student decoder pass over all prefix
  sets with backward, one teacher encoder and decoder pass where its logits are needed
  and did not come out of sampling), written as straight-line ``transformers`` calls.

Each repeat runs every mode (and, for JS and TVD, the online variant below) once, with
the same seed (hence the same samples) and in a rotating order, so that a slow spell of a
shared machine hits all of them alike. A step time is the median over repeats; a ratio
between two arms is the median over repeats of their per-repeat ratio (paired: both ran in
the same round), which stays put when the machine's load changes halfway. Tokens per
second counts the non-pad target tokens of all prefix sets of the step. Peak memory is
``torch.cuda.max_memory_allocated`` on GPU; on CPU it is the peak of the running sum of
the allocations and frees that torch's CPU allocator reports to the profiler during one
step (a separate, untimed step), i.e. tensor memory only, above what was live before the
step. The paper's Table 4 is re-measured for JS and TVD: offline teacher prefixes (the
default) against teacher prefixes sampled each step ("online").

Results go to ``results/bench/<timestamp>.parquet`` (written atomically) and are printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..config import DecodeConfig, ModelConfig, StudentConfig, set_path
from ..data import Batch, pad
from ..methods.base import Method
from ..lm import Prefix, Seq2SeqLM, build_model, generation_config, make_student, sequences_to_prefix
from ..errors import HarnessError

MODES = ("fast", "reference", "bare")
PAPER_TABLE4 = {"js": 2.25, "tvd": 2.31}   # offline/online speed-up per epoch, DART, one GPU (PAPER.md §2)


# ---------------------------------------------------------------- configuration

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


def resolve_bench_config(preset: str, sets: list[tuple[str, str]] | tuple = ()) -> BenchConfig:
    """The preset's values, then ``--set`` pairs (text, type-checked like ``harness run``'s)."""
    from ..errors import UnknownNameError

    if preset not in PRESETS:
        raise UnknownNameError("bench preset", preset, list(PRESETS))
    cfg = BenchConfig(preset=preset)
    for key, value in PRESETS[preset].items():
        set_path(cfg, key, value, from_text=False)
    for key, value in sets:
        if key == "preset":
            raise HarnessError("--set preset=...: choose the preset with --preset")
        set_path(cfg, key, value, from_text=True)
    if cfg.autocast not in AUTOCAST:
        raise HarnessError(f"autocast={cfg.autocast!r}: expected one of {', '.join(AUTOCAST)}")
    if (cfg.repeats < 1 or cfg.warmup < 0 or cfg.threads < 0 or cfg.batch_size < 1 or cfg.source_tokens < 2
            or cfg.target_tokens < 2):
        raise HarnessError("repeats and batch_size must be ≥ 1, warmup and threads ≥ 0, source/target_tokens ≥ 2")
    return cfg


AUTOCAST = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


# ---------------------------------------------------------------- synthetic models and data

@dataclass(frozen=True)
class SyntheticVocab:
    """Token ids only: what building a model and the adapters read from a tokenizer (no text is ever made)."""

    size: int
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2
    unk_token_id: int = 3

    def __len__(self) -> int:
        return self.size


def build_models(cfg: BenchConfig, device: torch.device) -> tuple[Seq2SeqLM, Seq2SeqLM, dict]:
    """Random-weight teacher (eval) and layer-copied student (train mode), as in a KD stage."""
    if cfg.teacher.dropout:
        raise HarnessError("the bench needs teacher.dropout=0: with dropout the modes draw different masks")
    torch.manual_seed(cfg.seed)
    vocab = SyntheticVocab(cfg.vocab_size)
    teacher = build_model(cfg.teacher, vocab)
    if not teacher.config.is_encoder_decoder:
        raise HarnessError("the bench builds encoder-decoder models (teacher.family t5 or bart)")
    student, layer_map = make_student(teacher, cfg.student.encoder_layers, cfg.student.decoder_layers)
    teacher.to(device).eval()
    student.to(device).train()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return Seq2SeqLM(student, vocab), Seq2SeqLM(teacher, vocab), layer_map


def synthetic_batch(cfg: BenchConfig, device: torch.device) -> Batch:
    """Random tokens ending in EOS: sources, ground truth and offline teacher outputs of varied lengths."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    vocab = SyntheticVocab(cfg.vocab_size)

    def seqs(longest: int) -> list[list[int]]:
        lengths = torch.randint(max(2, math.ceil(0.75 * longest)), longest + 1, (cfg.batch_size,), generator=gen)
        return [torch.randint(4, cfg.vocab_size, (int(n) - 1,), generator=gen).tolist() + [vocab.eos_token_id]
                for n in lengths]

    src, src_mask = pad(seqs(cfg.source_tokens), vocab.pad_token_id)
    target = Prefix(*pad(seqs(cfg.target_tokens), vocab.pad_token_id))
    offline = Prefix(*pad(seqs(cfg.target_tokens), vocab.pad_token_id))
    return Batch(list(range(cfg.batch_size)), src, src_mask, target, offline).to(device)


# ---------------------------------------------------------------- the floor

def bare_loss(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, batch: Batch,
              sampling: DecodeConfig, layer_map: dict | None = None, *,
              autocast_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The method's loss from its unavoidable model calls only, as straight-line ``transformers`` calls.

    The same loss as :func:`harness.step.fast.method_loss` (``tests/test_bench.py`` checks it),
    without adapters or bookkeeping. Sampling runs under ``torch.inference_mode``; the
    teacher's encoder and decoder passes under ``torch.no_grad`` (their outputs need no copy).
    """
    from transformers.modeling_outputs import BaseModelOutput

    weights = {s: w for s, w in method.prefix_weights().items() if w != 0}
    sources = list(weights)
    hidden = method.needs_hidden_states
    s_model, t_model = student.model, teacher.model if teacher is not None else None
    needs_teacher = method.uses_teacher or "teacher_sample" in weights
    src, src_mask, n = batch.source_ids, batch.source_mask, len(batch)
    amp = (torch.autocast("cuda", dtype=autocast_dtype) if autocast_dtype is not None and src.is_cuda
           else contextlib.nullcontext())
    with amp:
        s_enc = s_model.get_encoder()(input_ids=src, attention_mask=src_mask, output_hidden_states=hidden)
        t_enc = None
        if needs_teacher:
            with torch.no_grad():
                t_enc = t_model.get_encoder()(input_ids=src, attention_mask=src_mask, output_hidden_states=hidden)

        prefixes: dict[str, Prefix] = {}
        for s in sources:
            if s == "ground_truth":
                prefixes[s] = batch.target
                continue
            if s == "teacher_offline":
                prefixes[s] = batch.teacher_output
                continue
            model, enc = (t_model, t_enc) if s == "teacher_sample" else (s_model, s_enc)
            decode = (DecodeConfig(num_beams=1, do_sample=False, max_new_tokens=sampling.max_new_tokens)
                      if s == "student_greedy" else sampling)
            gen = generation_config(decode, pad_id=student.pad_id, eos_id=student.eos_id,
                                    bos_id=student.tokenizer.bos_token_id, start_id=student.start_id)
            with_logits = s == "teacher_sample" and method.uses_teacher and not hidden and decode.num_beams == 1
            gen.return_dict_in_generate = gen.output_logits = with_logits
            with torch.inference_mode():
                out = model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=enc.last_hidden_state.detach()),
                                     attention_mask=src_mask, generation_config=gen)
            # ops outside inference mode turn its tensors into ordinary ones (safe to save for backward)
            seq = (out.sequences if with_logits else out)[:, 1:].clone()
            prefixes[s] = sequences_to_prefix(seq, student.eos_id, student.pad_id)
            if with_logits:
                prefixes[s].logits = torch.stack(out.logits, dim=1)

        def decoder_inputs(names: list[str]):
            width = max(prefixes[s].tokens.shape[1] for s in names)
            tokens = torch.cat([torch.nn.functional.pad(prefixes[s].tokens.masked_fill(prefixes[s].mask == 0,
                                                                                         student.pad_id),
                                                        (0, width - prefixes[s].tokens.shape[1]),
                                                        value=student.pad_id) for s in names])
            mask = torch.cat([torch.nn.functional.pad(prefixes[s].mask, (0, width - prefixes[s].mask.shape[1]))
                              for s in names])
            start = tokens.new_full((tokens.shape[0], 1), student.start_id)
            dec_mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, :-1]], dim=1)
            return torch.cat([start, tokens[:, :-1]], dim=1), dec_mask

        def decoder_pass(model, enc, names):
            ids, dec_mask = decoder_inputs(names)
            k = len(names)
            return model(encoder_outputs=BaseModelOutput(last_hidden_state=enc.last_hidden_state.repeat(k, 1, 1)),
                         attention_mask=src_mask.repeat(k, 1), decoder_input_ids=ids, decoder_attention_mask=dec_mask,
                         output_hidden_states=hidden, use_cache=False)

        s_out = decoder_pass(s_model, s_enc, sources)
        t_logits: dict[str, torch.Tensor | None] = {s: prefixes[s].logits for s in sources}
        t_out = None
        if method.uses_teacher:
            unscored = [s for s in sources if t_logits[s] is None]
            if unscored:
                with torch.no_grad():
                    t_out = decoder_pass(t_model, t_enc, unscored)
                for i, s in enumerate(unscored):
                    t_logits[s] = t_out.logits[i * n:(i + 1) * n, :prefixes[s].tokens.shape[1]]

        terms: dict[str, torch.Tensor] = {}
        loss = torch.zeros((), device=src.device)
        per_source = s_out.logits.split(n)
        for i, s in enumerate(sources):
            per_token = method.token_loss(per_source[i][:, :prefixes[s].tokens.shape[1]], t_logits[s],
                                          prefixes[s].tokens, s)
            mask = prefixes[s].mask.to(per_token.dtype)
            terms[s] = (per_token * mask).sum() / mask.sum().clamp_min(1.0)
            loss = loss + weights[s] * terms[s]
        if hidden:
            teacher_states = None if t_out is None else {"encoder": t_enc.hidden_states,
                                                          "decoder": t_out.decoder_hidden_states}
            extra = method.extra_loss({"encoder": s_enc.hidden_states, "decoder": s_out.decoder_hidden_states},
                                      teacher_states, batch, layer_map)
            if extra is not None:
                terms["extra"] = extra
                loss = loss + extra
    return loss, terms


def loss_function(mode: str) -> Callable:
    if mode == "bare":
        return bare_loss
    from ..step.reference import step_loss

    return step_loss(mode)


# ---------------------------------------------------------------- Table 4: online teacher prefixes

class OnlineTeacher(Method):
    """``inner`` with its offline teacher prefixes replaced by teacher samples drawn every step.

    The "online" row of the paper's Table 4; the per-token loss is unchanged (it is told
    its prefixes are the teacher's, as before).
    """

    def __init__(self, inner: Method):
        self.inner = inner
        self.params = inner.params
        self.uses_teacher = inner.uses_teacher
        self.needs_hidden_states = inner.needs_hidden_states

    def prefix_weights(self) -> dict[str, float]:
        return {("teacher_sample" if s == "teacher_offline" else s): w for s, w in self.inner.prefix_weights().items()}

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return self.inner.token_loss(student_logits, teacher_logits, tokens,
                                     "teacher_offline" if source == "teacher_sample" else source)

    def extra_loss(self, student_out, teacher_out, batch, layer_map):
        return self.inner.extra_loss(student_out, teacher_out, batch, layer_map)


# ---------------------------------------------------------------- measuring

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the profiler's C++ start/stop lines, which bypass Python's sys.stderr."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class Setup:
    """Everything a timed step needs, built once per preset."""

    cfg: BenchConfig
    student: Seq2SeqLM
    teacher: Seq2SeqLM
    layer_map: dict
    batch: Batch
    device: torch.device
    autocast_dtype: torch.dtype | None


def make_setup(cfg: BenchConfig) -> Setup:
    from ..lm import resolve_device

    device = resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HarnessError(f"bench preset {cfg.preset!r} runs on {cfg.device}, but no CUDA device is available "
                           f"(--device cpu runs it here, slowly)")
    student, teacher, layer_map = build_models(cfg, device)
    return Setup(cfg, student, teacher, layer_map, synthetic_batch(cfg, device), device, AUTOCAST[cfg.autocast])


def run_step(setup: Setup, mode: str, method: Method, seed: int) -> tuple[float, float]:
    """One timed step (loss + backward) of ``mode``; returns (seconds, loss)."""
    fn = loss_function(mode)
    setup.student.model.zero_grad(set_to_none=True)
    _sync(setup.device)
    torch.manual_seed(seed)
    start = time.perf_counter()
    loss, _ = fn(method, setup.student, setup.teacher, setup.batch, setup.cfg.sampling, setup.layer_map,
                 autocast_dtype=setup.autocast_dtype)
    loss.backward()
    _sync(setup.device)
    seconds = time.perf_counter() - start
    return seconds, float(loss.detach())


def peak_memory_mib(setup: Setup, mode: str, method: Method, seed: int) -> tuple[float, str]:
    """Peak tensor memory of one step above what was live before it, and how it was measured."""
    if setup.device.type == "cuda":
        setup.student.model.zero_grad(set_to_none=True)
        torch.cuda.synchronize(setup.device)
        torch.cuda.reset_peak_memory_stats(setup.device)
        base = torch.cuda.memory_allocated(setup.device)
        run_step(setup, mode, method, seed)
        return (torch.cuda.max_memory_allocated(setup.device) - base) / 2 ** 20, "cuda.max_memory_allocated"
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run_step(setup, mode, method, seed)
    with _quiet_stderr():
        events = prof.profiler.kineto_results.events()
    changes = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in changes:
        live += nbytes
        peak = max(peak, live)
    return peak / 2 ** 20, "profiler allocation events (CPU tensors)"


def count_tokens(setup: Setup, method: Method, seed: int) -> int:
    """Non-pad target tokens over all prefix sets of the step with ``seed`` (the first timed step's samples;
    random-weight models rarely stop early, so every repeat's count is within a few tokens of it)."""
    from ..step.fast import collect_prefix

    s, t, b = setup.student, setup.teacher, setup.batch
    torch.manual_seed(seed)
    with torch.no_grad():
        s_enc = s.encode(b.source_ids, b.source_mask)
        t_enc = t.encode(b.source_ids, b.source_mask)
        return sum(int(collect_prefix(source, b, s, s_enc, t, t_enc, setup.cfg.sampling).mask.sum())
                   for source, w in method.prefix_weights().items() if w != 0)


def measure(setup: Setup, label: str, variants: dict[str, tuple[Method, tuple[str, ...]]],
            progress: Callable[[str], None] = lambda _: None) -> list[dict]:
    """Rows (one per variant and mode) for one method: median step time, tokens/s, peak memory, loss agreement.

    ``variants`` maps a variant name ("default", "online-teacher") to its method object and
    modes. Every (variant, mode) arm runs once per repeat, in an order rotated each repeat,
    so that all ratios between arms — fast/reference, fast/bare, online/offline — are
    measured side by side.
    """
    cfg = setup.cfg
    arms = [(v, mode) for v, (_, modes) in variants.items() for mode in modes]
    times: dict[tuple[str, str], list[float]] = {arm: [] for arm in arms}
    losses: dict[tuple[str, str], list[float]] = {arm: [] for arm in arms}
    for r in range(cfg.warmup + cfg.repeats):
        for variant, mode in arms[r % len(arms):] + arms[:r % len(arms)]:
            seconds, loss = run_step(setup, mode, variants[variant][0], cfg.seed + r)
            if r >= cfg.warmup:
                times[variant, mode].append(seconds)
                losses[variant, mode].append(loss)
    median = {arm: statistics.median(times[arm]) for arm in arms}
    nan = float("nan")

    def ratio(top: tuple[str, str], bottom: tuple[str, str]) -> float:
        """Median over repeats of the per-repeat ratio: both arms of each pair ran in the same round."""
        if top not in times or bottom not in times:
            return nan
        return statistics.median(a / b for a, b in zip(times[top], times[bottom]))

    rows = []
    for variant, (method, modes) in variants.items():
        tokens = count_tokens(setup, method, cfg.seed + cfg.warmup)
        for mode in modes:
            arm = (variant, mode)
            memory, how = peak_memory_mib(setup, mode, method, cfg.seed)
            fast = losses.get((variant, "fast"))
            rows.append({
                "preset": cfg.preset, "method": label, "variant": variant, "mode": mode,
                "step_s": median[arm], "step_s_min": min(times[arm]), "step_s_max": max(times[arm]),
                "step_s_all": times[arm], "repeats": cfg.repeats, "tokens": tokens,
                "tokens_per_s": tokens / median[arm], "peak_mem_mib": memory, "memory_measure": how,
                "speedup_vs_reference": ratio((variant, "reference"), arm),
                "over_floor": ratio(arm, (variant, "bare")),
                "online_over_offline": ratio(arm, ("default", mode)) if variant != "default" else nan,
                "loss": statistics.median(losses[arm]),
                "max_loss_diff_vs_fast": max(abs(a - b) for a, b in zip(losses[arm], fast)) if fast else nan,
            })
        progress(f"[bench] {cfg.preset} {label}{'' if variant == 'default' else ' (' + variant + ')'}: "
                 + ", ".join(f"{m} {median[variant, m] * 1000:.0f} ms" for m in modes))
    return rows


def method_names(cfg: BenchConfig, given: tuple[str, ...] | list[str] = ()) -> list[str]:
    """``given``, else the preset's list, else every registered method; unknown names fail here."""
    from ..registry import METHODS

    names = list(given) or [m.strip() for m in cfg.methods.split(",") if m.strip()] or METHODS.names()
    for name in names:
        METHODS.get(name)
    return names


def make_method(name: str, task: str) -> Method:
    from ..registry import METHODS, TASKS

    cls = METHODS.get(name)
    return cls(cls.resolve_params({}, TASKS.get(task)))


def run_bench(cfg: BenchConfig, methods: list[str], modes: tuple[str, ...] = MODES, table4: bool = True,
              progress: Callable[[str], None] = lambda _: None) -> list[dict]:
    """Measure every method of ``methods`` on ``cfg``; with ``table4``, JS and TVD online as well."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise HarnessError(f"unknown bench mode {unknown[0]!r}; known: {', '.join(MODES)}")
    setup = make_setup(cfg)
    context = {
        "device": str(setup.device),
        "device_name": torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "batch_size": cfg.batch_size,
        "source_tokens": int(setup.batch.source_mask.sum(1).float().mean()),
        "target_tokens": cfg.target_tokens, "sampling_beams": cfg.sampling.num_beams, "autocast": cfg.autocast,
        "teacher_params": sum(p.numel() for p in setup.teacher.model.parameters()),
        "student_params": sum(p.numel() for p in setup.student.model.parameters()),
        "torch": torch.__version__, "transformers": __import__("transformers").__version__,
    }
    rows = []
    for name in methods:
        method = make_method(name, cfg.task)
        variants = {"default": (method, modes)}
        online_modes = tuple(m for m in modes if m != "bare")
        if table4 and name in PAPER_TABLE4 and online_modes:
            variants["online-teacher"] = (OnlineTeacher(method), online_modes)
        rows += measure(setup, name, variants, progress)
    return [{**row, **context} for row in rows]


def write_results(rows: list[dict], results_dir: str | Path, stamp: str | None = None) -> Path:
    """``<results_dir>/bench/<timestamp>.parquet``, through a temporary file and a rename."""
    import pandas as pd

    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    folder = Path(results_dir) / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{stamp}.parquet"
    table = pd.DataFrame([{**row, "timestamp": stamp} for row in rows])
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    try:
        table.to_parquet(tmp, index=False)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


# ---------------------------------------------------------------- printing

def format_tables(rows: list[dict]) -> str:
    """The step-time table (fast vs reference vs floor) and the Table 4 comparison, as text."""
    lines = []
    default = [r for r in rows if r["variant"] == "default"]
    by_key: dict[tuple[str, str], dict[str, dict]] = {}
    for r in default:
        by_key.setdefault((r["preset"], r["method"]), {})[r["mode"]] = r
    header = (f"{'preset':<10} {'method':<11} {'fast ms':>8} {'ref ms':>8} {'bare ms':>8} {'fast/ref':>9} "
              f"{'fast/bare':>9} {'fast tok/s':>10} {'fast MiB':>9} {'ref MiB':>8} {'|Δloss|':>8}")
    lines += [header, "-" * len(header)]
    for (preset, method), modes in by_key.items():
        def cell(mode, key, scale=1.0, fmt="{:.0f}"):
            return fmt.format(modes[mode][key] * scale) if mode in modes else "-"
        fast = modes.get("fast")
        vs_ref = f"{fast['speedup_vs_reference']:.2f}×" if fast and "reference" in modes else "-"
        vs_bare = f"{fast['over_floor']:.2f}×" if fast and "bare" in modes else "-"
        lines.append(
            f"{preset:<10} {method:<11} {cell('fast', 'step_s', 1000):>8} {cell('reference', 'step_s', 1000):>8} "
            f"{cell('bare', 'step_s', 1000):>8} {vs_ref:>9} {vs_bare:>9} "
            f"{cell('fast', 'tokens_per_s'):>10} {cell('fast', 'peak_mem_mib', 1, '{:.1f}'):>9} "
            f"{cell('reference', 'peak_mem_mib', 1, '{:.1f}'):>8} "
            f"{cell('reference', 'max_loss_diff_vs_fast', 1, '{:.1e}'):>8}")
    online = {(r["preset"], r["method"], r["mode"]): r for r in rows if r["variant"] == "online-teacher"}
    if online:
        lines += ["", "Table 4: offline teacher prefixes vs online (teacher sampled each step), speed-up per step",
                  f"{'preset':<10} {'method':<7} {'mode':<10} {'online ms':>10} {'offline ms':>10} "
                  f"{'speed-up':>9} {'paper':>6}"]
        for (preset, method, mode), on in online.items():
            off = next((r for r in default if (r["preset"], r["method"], r["mode"]) == (preset, method, mode)), None)
            if off is None:
                continue
            lines.append(f"{preset:<10} {method:<7} {mode:<10} {on['step_s'] * 1000:>10.0f} "
                         f"{off['step_s'] * 1000:>10.0f} {on['online_over_offline']:>8.2f}× "
                         f"{PAPER_TABLE4[method]:>5.2f}×")
    if rows:
        r = rows[0]
        lines += ["", f"device {r['device_name']} ({r['threads']} threads); step = loss + backward; times: median of "
                      f"{r['repeats']} repeats; ratios: median of per-repeat ratios, arms interleaved; "
                      f"memory: {r['memory_measure']}"]
    return "\n".join(lines)


def describe(cfg: BenchConfig) -> dict:
    return dataclasses.asdict(cfg)

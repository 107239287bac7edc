"""`harness bench`: presets, the bare floor, the online-teacher variant, results, the command."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from harness import bench
from harness.step import bare, fast as fast_step, reference
from harness.cli import cli
from harness.config import DecodeConfig
from harness.errors import HarnessError
from harness.registry import METHODS
from harness.testing import make_method, method_cases

TINY = [("teacher.d_model", "16"), ("teacher.heads", "2"), ("teacher.ffn_dim", "32"),
        ("teacher.encoder_layers", "2"), ("teacher.decoder_layers", "2"), ("student.encoder_layers", "1"),
        ("student.decoder_layers", "1"), ("vocab_size", "60"), ("batch_size", "3"), ("source_tokens", "9"),
        ("target_tokens", "6"), ("sampling.max_new_tokens", "6"), ("sampling.top_k", "8"),
        ("repeats", "1"), ("warmup", "0")]


@pytest.fixture(scope="module")
def tiny_setup():
    setup = bench.make_setup(bench.resolve_bench_config("dart-like", TINY))
    with torch.no_grad():  # move the student away from the teacher so every divergence is clearly > 0
        for param in setup.student.model.parameters():
            param.add_(torch.randn_like(param) * 0.5)
    return setup


# ---------------------------------------------------------------- presets

def test_presets_resolve_to_the_shapes_they_name():
    dart = bench.resolve_bench_config("dart-like")
    assert (dart.teacher.family, dart.teacher.d_model, dart.teacher.encoder_layers, dart.teacher.decoder_layers) == \
        ("t5", 128, 3, 3)
    assert (dart.student.encoder_layers, dart.student.decoder_layers, dart.batch_size) == (2, 1, 32)
    xsum = bench.resolve_bench_config("xsum-like")
    assert xsum.source_tokens >= 256 and xsum.device == "cpu"


def test_paper_gpu_preset_is_bart_large_sized():
    cfg = bench.resolve_bench_config("paper-gpu")
    t = cfg.teacher
    assert (t.family, t.d_model, t.heads, t.ffn_dim, t.encoder_layers, t.decoder_layers) == \
        ("bart", 1024, 16, 4096, 12, 12)
    assert (cfg.student.encoder_layers, cfg.student.decoder_layers, cfg.batch_size) == (3, 1, 8)
    assert cfg.vocab_size == 50265 and cfg.device == "cuda" and cfg.autocast == "bf16"
    assert cfg.sampling.num_beams == 5 and cfg.sampling.do_sample
    assert cfg.source_tokens + cfg.target_tokens <= t.max_positions


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where there is no GPU")
def test_paper_gpu_preset_says_it_needs_a_gpu():
    with pytest.raises(HarnessError, match="no CUDA device"):
        bench.make_setup(bench.resolve_bench_config("paper-gpu"))


def test_overrides_are_type_checked():
    cfg = bench.resolve_bench_config("xsum-like", [("batch_size", "4"), ("sampling.num_beams", "2")])
    assert cfg.batch_size == 4 and cfg.sampling.num_beams == 2
    with pytest.raises(HarnessError, match="expected an integer"):
        bench.resolve_bench_config("dart-like", [("batch_size", "many")])
    with pytest.raises(HarnessError, match="unknown config key"):
        bench.resolve_bench_config("dart-like", [("batchsize", "4")])
    with pytest.raises(HarnessError, match="autocast"):
        bench.resolve_bench_config("dart-like", [("autocast", "fp8")])
    with pytest.raises(HarnessError, match="unknown bench preset"):
        bench.resolve_bench_config("wmt-like")


def test_synthetic_batch_has_the_preset_shape(tiny_setup):
    batch, cfg = tiny_setup.batch, tiny_setup.cfg
    assert batch.source_ids.shape == (cfg.batch_size, cfg.source_tokens)
    lengths = batch.source_mask.sum(1)
    assert lengths.min() >= 0.75 * cfg.source_tokens
    last = batch.source_ids.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
    assert (last == bench.SyntheticVocab(cfg.vocab_size).eos_token_id).all()
    assert batch.teacher_output is not None and batch.target.tokens.shape[1] <= cfg.target_tokens


# ---------------------------------------------------------------- the floor computes the same loss

def _loss_and_grads(fn, method, setup, seed=7):
    setup.student.model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss, _ = fn(method, setup.student, setup.teacher, setup.batch, setup.cfg.sampling, setup.layer_map)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in setup.student.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("case", method_cases())
def test_bare_floor_computes_the_engines_loss(tiny_setup, case):
    method = make_method(*method_cases()[case])
    fast_loss, fast_grads = _loss_and_grads(fast_step.method_loss, method, tiny_setup)
    bare_loss, bare_grads = _loss_and_grads(bare.bare_loss, method, tiny_setup)
    assert fast_loss > 1e-4
    assert bare_loss == pytest.approx(fast_loss, abs=1e-5)
    assert fast_grads.keys() == bare_grads.keys()
    for key in fast_grads:
        assert torch.allclose(fast_grads[key], bare_grads[key], atol=1e-5, rtol=1e-4), key


# ---------------------------------------------------------------- Table 4's online variant

def test_online_teacher_samples_the_teacher_side(tiny_setup):
    tvd = bench.make_method("tvd", "dart")
    online = bench.OnlineTeacher(tvd)
    assert online.prefix_weights() == {"teacher_sample": 0.5, "student_sample": 0.5}
    seen = []
    real = tvd.token_loss
    tvd.token_loss = lambda s, t, tok, source: seen.append(source) or real(s, t, tok, source)
    fast, _ = _loss_and_grads(fast_step.method_loss, online, tiny_setup)
    ref, _ = _loss_and_grads(reference.reference_loss, online, tiny_setup)
    assert fast == pytest.approx(ref, abs=1e-5)
    assert set(seen) == {"teacher_offline", "student_sample"}   # the inner loss sees its own source names


# ---------------------------------------------------------------- measuring and writing

def test_run_bench_rows_tables_and_parquet(tiny_setup, tmp_path):
    setup = dataclasses.replace(tiny_setup, cfg=dataclasses.replace(tiny_setup.cfg, repeats=3))
    rows = bench.run_bench(setup.cfg, ["tvd", "kl"], setup=setup)
    kinds = {(r["method"], r["variant"], r["mode"]) for r in rows}
    assert kinds == {("tvd", "default", m) for m in bench.MODES} | {("kl", "default", m) for m in bench.MODES} \
        | {("tvd", "online-teacher", "fast"), ("tvd", "online-teacher", "reference")}
    for r in rows:
        assert r["step_s"] > 0 and r["tokens"] > 0 and r["peak_mem_mib"] > 0
        assert r["tokens_per_s"] == pytest.approx(r["tokens"] / r["step_s"])
        assert r["max_loss_diff_vs_fast"] <= 1e-5
        if r["variant"] == "online-teacher":   # a paired ratio: repeat by repeat, then the median
            offline = next(o for o in rows if (o["method"], o["variant"], o["mode"]) == ("tvd", "default", r["mode"]))
            expected = sorted(a / b for a, b in zip(r["step_s_all"], offline["step_s_all"]))
            assert r["online_over_offline"] == pytest.approx(expected[len(expected) // 2])
    text = bench.format_tables(rows)
    assert "fast/ref" in text and "Table 4" in text and "2.31×" in text
    path = bench.write_results(rows, tmp_path, stamp="t0")
    assert path == tmp_path / "bench" / "t0.parquet"
    table = pd.read_parquet(path)
    assert len(table) == len(rows) and {"speedup_vs_reference", "over_floor", "memory_measure"} <= set(table.columns)
    assert [p.name for p in (tmp_path / "bench").iterdir()] == ["t0.parquet"]   # no temporary file left


def test_write_results_leaves_nothing_when_writing_fails(tmp_path, monkeypatch):
    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError):
        bench.write_results([{"preset": "x", "step_s": 1.0}], tmp_path, stamp="t1")
    assert list((tmp_path / "bench").iterdir()) == []


def test_write_results_on_a_full_disk_is_the_one_line_error(tmp_path, monkeypatch):
    import errno

    from harness.errors import DiskFullError

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    with pytest.raises(DiskFullError, match="disk full while writing"):
        bench.write_results([{"preset": "x", "step_s": 1.0}], tmp_path, stamp="t2")
    assert list((tmp_path / "bench").iterdir()) == []


def test_peak_memory_counts_the_step(tiny_setup):
    small, how = bench.peak_memory_mib(tiny_setup, "fast", bench.make_method("mle", "dart"), 0)
    big, _ = bench.peak_memory_mib(tiny_setup, "fast", bench.make_method("tvd", "dart"), 0)
    assert 0 < small < big   # two prefix sets and a teacher pass hold more than one set alone
    assert how.startswith("profiler") or how.startswith("cuda")


# ---------------------------------------------------------------- the command

def test_bench_command_dry_run_resolves_paper_gpu():
    result = CliRunner().invoke(cli, ["bench", "--preset", "paper-gpu", "--method", "js", "--dry-run",
                                      "--set", "source_tokens=1024", "--repeats", "3"])
    assert result.exit_code == 0, result.output
    [cfg] = json.loads(result.output)
    assert cfg["methods"] == ["js"] and cfg["teacher"]["d_model"] == 1024 and cfg["source_tokens"] == 1024
    assert cfg["repeats"] == 3


def test_method_lists_come_from_the_command_the_preset_or_the_registry():
    paper = bench.resolve_bench_config("paper-gpu")
    assert bench.method_names(paper) == ["kl", "rkl", "js", "tvd"]
    assert bench.method_names(paper, ["mle"]) == ["mle"]
    assert bench.method_names(bench.resolve_bench_config("dart-like")) == METHODS.names()
    with pytest.raises(HarnessError, match="unknown method"):
        bench.method_names(paper, ["nope"])


def test_bench_command_rejects_unknown_names():
    result = CliRunner().invoke(cli, ["bench", "--method", "nope", "--dry-run"])
    assert result.exit_code != 0 and "unknown method" in str(result.exception)
    result = CliRunner().invoke(cli, ["bench", "--preset", "nope", "--dry-run"])
    assert result.exit_code != 0 and "unknown bench preset" in str(result.exception)


def test_bench_command_measures_and_writes(tmp_path):
    args = ["bench", "--preset", "dart-like", "--method", "rkl", "--results-dir", str(tmp_path), "--threads", "1"]
    for key, value in TINY:
        args += ["--set", f"{key}={value}"]
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert "rkl" in result.output and "results:" in result.output
    [path] = (tmp_path / "bench").glob("*.parquet")
    table = pd.read_parquet(path)
    assert set(table["mode"]) == set(bench.MODES) and (table["threads"] == 1).all()


# ---------------------------------------------------------------- evaluation decoding

def test_decode_batches_by_source_length_and_matches_one_by_one(tiny_setup):
    """Batched by length (less padding), greedy outputs equal decoding each input alone."""
    from harness import evaluate
    from harness.data import TokenizedSplit
    from harness.task import Example

    teacher = tiny_setup.teacher
    gen = torch.Generator().manual_seed(0)
    sources = [torch.randint(4, 60, (int(n),), generator=gen).tolist() + [2] for n in [7, 2, 5, 3, 6, 1]]
    split = TokenizedSplit([Example(str(i), "", "", ("",)) for i in range(6)], sources, [[2]] * 6)
    greedy = DecodeConfig(num_beams=1, max_new_tokens=5, batch_size=2)
    seen = []
    real = teacher.generate

    def spy(enc, cfg, *args, **kwargs):
        seen.append(enc.attention_mask.sum(1).tolist())
        return real(enc, cfg, *args, **kwargs)

    teacher.generate = spy
    try:
        together = evaluate.decode(teacher, split, greedy, "cpu")
    finally:
        del teacher.generate
    assert [len(b) for b in seen] == [2, 2, 2]
    flat = [n for b in seen for n in b]
    assert flat == sorted(flat)
    alone = [evaluate.decode(teacher, TokenizedSplit(split.examples[i:i + 1], sources[i:i + 1], [[2]]), greedy,
                             "cpu")[0] for i in range(6)]
    assert together == alone


# ---------------------------------------------------------------- whole cells (--cell)

def test_bench_cell_builds_every_stage_then_only_what_the_store_changes(tmp_path):
    """Store off: every stage of the cell is built in a fresh cache; store on: the store is built and the
    stages that read it, the rest reused (same key). The command prints both columns and writes parquet."""
    result = CliRunner().invoke(cli, ["bench", "--cell", "dart", "--method", "tvd", "--profile", "ci",
                                      "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(next((tmp_path / "bench").glob("*.parquet")))
    off, on = (table[table.variant == v].set_index("label") for v in ("store off", "store on"))
    assert not off.reused.any() and (off.seconds > 0).all()
    assert {"teacher", "pseudo_labels", "predistill", "method", "evaluation/tvd"} <= set(off.index)
    store = [label for label in on.index if label.startswith("teacher_outputs")]
    assert store and on.loc[store[0], "store_bytes_per_token"] > 0
    assert on.loc["teacher", "reused"] and on.loc["teacher", "key"] == off.loc["teacher", "key"]
    assert not on.loc["method", "reused"] and on.loc["method", "key"] != off.loc["method", "key"]
    assert on.loc["method", "teacher_tokens_from_store"] > 0 == off.loc["method", "teacher_tokens_from_store"]
    assert "store off" in result.output and "total" in result.output
    assert not any(p.name.startswith("bench-cell-") for p in (tmp_path / "bench").iterdir())   # scratch removed


def test_bench_cell_unknown_task_or_method_is_one_line(tmp_path):
    for args in (["--cell", "dartt"], ["--cell", "dart", "--method", "tvdd"]):
        result = CliRunner().invoke(cli, ["bench", *args, "--results-dir", str(tmp_path)])
        assert isinstance(result.exception, HarnessError) and "known" in str(result.exception)
        assert not (tmp_path / "bench").exists()   # refused before any work


# ---------------------------------------------------------------- the paper's shapes; sizes checked first

@pytest.mark.parametrize("preset, family, width, depths, vocab, student", [
    ("paper-dart", "bart", 1024, (12, 12), 50265, (3, 1)), ("paper-xsum", "bart", 1024, (12, 12), 50265, (3, 3)),
    ("paper-wmt", "t5", 768, (12, 12), 32128, (3, 1)), ("paper-dialogue", "gpt2", 1024, (0, 24), 50257, (0, 4))])
def test_paper_presets_have_the_paper_models_shapes(preset, family, width, depths, vocab, student):
    cfg = bench.resolve_bench_config(preset, [("device", "cpu")])
    t = cfg.teacher
    assert (t.family, t.d_model, (t.encoder_layers, t.decoder_layers), cfg.vocab_size) == (family, width, depths, vocab)
    assert (cfg.student.encoder_layers, cfg.student.decoder_layers) == student and t.pretrained is None
    assert cfg.batch_size == 2 and cfg.source_tokens == 32   # a few small steps on CPU
    gpu = bench.resolve_bench_config(preset, [("device", "cuda")])
    assert gpu.batch_size == 8 and gpu.source_tokens >= 128   # the recipe's on CUDA
    assert bench.mode_names(cfg) == ("fast",) and bench.method_names(cfg) == ["kl", "rkl", "js", "tvd"]
    kept = bench.resolve_bench_config(preset, [("device", "cpu"), ("batch_size", "3")])
    assert kept.batch_size == 3   # --set wins over the CPU sizes


def test_paper_dialogue_preset_measures_a_decoder_only_pair():
    small = [("device", "cpu"), ("teacher.d_model", "16"), ("teacher.heads", "2"), ("teacher.ffn_dim", "32"),
             ("teacher.decoder_layers", "2"), ("student.decoder_layers", "1"), ("vocab_size", "60"),
             ("repeats", "1"), ("warmup", "0"), ("threads", "1")]
    cfg = bench.resolve_bench_config("paper-dialogue", small)
    threads = torch.get_num_threads()
    try:
        rows = bench.run_bench(cfg, ["mle", "kl"], bench.mode_names(cfg), table4=cfg.table4)
    finally:
        torch.set_num_threads(threads)
    assert {(r["method"], r["mode"]) for r in rows} == {("mle", "fast"), ("kl", "fast")}
    assert all(r["tokens_per_s"] > 0 and r["peak_mem_mib"] > 0 and r["estimated_step_mib"] > 0 for r in rows)
    assert "paper-dialogue" in bench.format_tables(rows)
    slow = [{**row, "tokens_per_s": 0.42} for row in rows]   # a paper-size model on CPU: under one token a second
    assert " 0.42 " in bench.format_tables(slow)
    with pytest.raises(HarnessError, match="bare is written for encoder-decoder"):
        bench.mode_names(cfg, ["bare"])


@pytest.mark.parametrize("sets, message", [
    ([("student.decoder_layers", "4")], "deeper than the teacher"),
    ([("student.encoder_layers", "5")], "deeper than the teacher"),
    ([("teacher.heads", "3")], "must divide teacher.d_model"),
    ([("vocab_size", "4")], "vocab_size=4"),
    ([("teacher.family", "bart"), ("source_tokens", "300")], "exceeds teacher.max_positions=256"),
])
def test_impossible_sizes_are_one_line_errors_before_building(sets, message):
    with pytest.raises(HarnessError, match=message):
        bench.resolve_bench_config("dart-like", sets)


def test_sizes_beyond_the_free_memory_are_refused_before_allocating(monkeypatch):
    from harness.bench import sizes

    cfg = bench.resolve_bench_config("paper-dart", [("device", "cpu"), ("batch_size", "4096"),
                                                    ("source_tokens", "1024"), ("target_tokens", "1000")])
    built = []

    def build(*args):
        built.append(args)
        raise RuntimeError("building")

    monkeypatch.setattr("harness.bench.synthetic.build_models", build)
    with pytest.raises(HarnessError, match=r"needs about [\d,.]+ GiB on cpu .* but only [\d,.]+ GiB are free"):
        bench.make_setup(cfg, [bench.make_method("kl", "dart")])
    assert not built
    monkeypatch.setattr(sizes, "available_bytes", lambda device: 1e15)
    with pytest.raises(RuntimeError, match="building"):   # fits: goes on to build
        bench.make_setup(cfg, [bench.make_method("kl", "dart")])
    assert built


def test_bench_command_absurd_size_is_one_line_exit_2():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--preset", "dart-like", "--set",
                             "student.decoder_layers=9", "--dry-run"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("harness: error:") and "deeper than the teacher" in result.stderr


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
                                   RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9"),
                                   MemoryError()])
def test_running_out_of_memory_past_the_estimate_is_one_line(tiny_setup, monkeypatch, error):
    def measure(*args, **kwargs):
        raise error

    monkeypatch.setattr(bench, "measure", measure)
    with pytest.raises(HarnessError, match="ran out of memory although its estimate fitted"):
        bench.run_bench(tiny_setup.cfg, ["mle"], ("fast",), setup=tiny_setup)
    monkeypatch.setattr(bench, "measure", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):   # other errors are not dressed up as memory
        bench.run_bench(tiny_setup.cfg, ["mle"], ("fast",), setup=tiny_setup)



@pytest.mark.parametrize("setting, message", [
    ("repeats=100000000", "repeats=100000000: expected <= 1000"),
    ("warmup=5000", "warmup=5000: expected <= 1000"),
    ("teacher.encoder_layers=10000", "teacher.encoder_layers=10000: expected <= 256"),
])
def test_bench_counts_that_would_run_for_hours_are_one_line(setting, message):
    """These passed every check and then ran for hours (the memory check cannot see time): refused up front."""
    with pytest.raises(HarnessError, match=message.replace("(", r"\(")):
        bench.resolve_bench_config("dart-like", [tuple(setting.split("="))])

"""Reliability: a full disk, NaN in a step, corrupted artefacts, safe loading, truncation.

The cases of bad *input* (unknown names, bad ``--set``, bad grids, bad local data) are
in test_cli_errors.py, test_config.py, test_grid_spec.py and the per-task data tests;
killing at random points is in test_grid_crash.py and test_grid_resume.py. This file
holds the rest, each case a test that fails if the behaviour regresses.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.store.cache import stage_key
from harness.store.checkpoints import read_progress
from harness.config import resolve_config
from harness.store.io import sha256_file
from harness.methods.baselines import MLE
from harness.pipeline import Pipeline
from harness.errors import DiskFullError, HarnessError
from harness.registry import METHODS, TASKS

REPO = Path(__file__).resolve().parents[1]


def run(results_dir, method="seqkd", seed=None, **sets):
    pairs = [("results_dir", str(results_dir))] + [(k, str(v)) for k, v in sets.items()]
    return Pipeline(resolve_config("dart", method, "ci", seed=seed, sets=pairs)).run()


# The tests that read the module's finished run: on one worker, so that it is built once.
WITH_THE_STORE = pytest.mark.xdist_group("reliability_store")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A results folder with one finished ci run (tokenizer, teacher, pseudo-labels, pre-distill, seqkd)."""
    root = tmp_path_factory.mktemp("store")
    return root, run(root)


def files_with_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in root.rglob("*")
            if p.is_file() and not p.name.endswith(".lock") and "logs" not in p.parts}


# --------------------------------------------------------------------------- disk full
@WITH_THE_STORE
def test_disk_full_while_writing_is_one_clear_error_and_keeps_what_was_written(store, monkeypatch, capfd):
    root, _ = store
    before = files_with_digests(root)
    real = pd.DataFrame.to_parquet

    def to_parquet(self, path, *args, **kwargs):
        if "curves" in str(path):   # the new method stage writes its training curves first
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    monkeypatch.setattr(sys, "argv", ["harness", "run", "--task", "dart", "--method", "mle", "--profile", "ci",
                                      "--seed", "7", "--results-dir", str(root)])
    from harness.cli import main

    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capfd.readouterr().err
    assert exit_info.value.code == 2
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert re.match(r"harness: error: disk full while writing \S+ \(\d+ MiB free now\): nothing was half-written "
                    r"and results written before are intact", last), last
    after = files_with_digests(root)
    assert {k: after.get(k) for k in before} == before            # every earlier file intact
    assert not [k for k in after if ".tmp-" in k or k.endswith(".tmp")]   # nothing half-written left
    assert not [p for p in (root / "runs").iterdir() if "seed7" in p.name]


def test_disk_full_stops_a_grid_at_once(tmp_path, monkeypatch):
    from harness.grid.runner import run_grid
    from harness.grid.spec import expand, load_spec

    spec = tmp_path / "two.toml"
    spec.write_text('name = "two"\nprofile = "ci"\ntasks = ["dart"]\nmethods = ["mle"]\nseeds = [1, 2]\n')
    cells = expand(load_spec(str(spec)), results_dir=str(tmp_path / "results"))
    calls = []

    def full(self):
        calls.append(self.cfg.seed)
        raise DiskFullError("disk full while writing somewhere: free some space")

    monkeypatch.setattr(Pipeline, "run", full)
    lines = []
    with pytest.raises(DiskFullError, match="disk full while writing somewhere"):
        run_grid(cells, "two", "ci", echo=lines.append)
    assert calls == [1]                      # the second cell was not started
    assert not (tmp_path / "results" / "failed").exists()


# --------------------------------------------------------------------------- NaN / inf in a step
@contextlib.contextmanager
def registered(registry, name: str, cls):
    """``cls`` registered as ``name`` for the duration (the registry is process-wide: leave it as found)."""
    registry.add(name, cls)
    try:
        yield
    finally:
        registry._items.pop(name, None)


class NaNFromStep3(MLE):
    """MLE whose loss turns NaN at the third optimizer step (one loss call per step; the declaration check's call
    on tiny random logits before training is not a step)."""

    calls = 0

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        from harness.methods.base import PROBE_SHAPE

        loss = super().token_loss(student_logits, teacher_logits, tokens, source)
        if tuple(student_logits.shape) == PROBE_SHAPE:
            return loss
        type(self).calls += 1
        return loss * float("nan") if type(self).calls >= 3 else loss


class InfGradient(MLE):
    """A finite loss whose gradient is not: d/dx sqrt(x) at x = 0."""

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        loss = super().token_loss(student_logits, teacher_logits, tokens, source)
        return loss + torch.sqrt((student_logits * 0).sum(-1))


@WITH_THE_STORE
def test_nan_loss_fails_the_stage_at_its_step_naming_the_term_and_keeps_the_last_good_checkpoint(store):
    from harness.train import NonFiniteLoss

    root, _ = store
    NaNFromStep3.calls = 0
    with registered(METHODS, "test_nan_from_step_3", NaNFromStep3), pytest.raises(NonFiniteLoss) as info:
        run(root, "test_nan_from_step_3", checkpoint_every=2)   # ci: 40 examples, batch 16 → 3 steps
    err = info.value
    assert (err.step, err.what) == (3, "loss")
    assert set(err.values) == {"ground_truth"} and err.values["ground_truth"] != err.values["ground_truth"]  # NaN
    assert str(err).startswith("non-finite loss at step 3: {'ground_truth': nan")
    partial = [p for p in (root / "cache").glob("*/*.partial") if read_progress(p)]
    assert [read_progress(p)["step"] for p in partial] == [2]       # the checkpoint before the NaN step is kept
    state = torch.load(partial[0] / "train_state.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values())


@WITH_THE_STORE
def test_inf_gradient_is_caught_before_the_optimizer_step(store):
    from harness.train import NonFiniteLoss

    root, _ = store
    with registered(METHODS, "test_inf_gradient", InfGradient), pytest.raises(NonFiniteLoss) as info:
        run(root, "test_inf_gradient")
    assert (info.value.step, info.value.what) == (1, "gradient norm")
    assert str(info.value).startswith("non-finite gradient norm at step 1: {'ground_truth': ")


# --------------------------------------------------------------------------- corrupted artefacts
def _stage_file(root: Path, stage: str, pattern: str) -> Path:
    found = sorted((root / "cache" / stage).glob(f"*/{pattern}"))
    assert found, f"no {pattern} in the {stage} stage"
    return found[0]


@pytest.mark.parametrize("stage, pattern", [
    ("tokenizer", "tokenizer.json"),
    ("pseudo_labels", "*.parquet"),
    ("teacher", "*.safetensors"),
    ("evaluation", "examples.parquet"),
])
@WITH_THE_STORE
def test_a_corrupted_stage_artefact_is_detected_reported_and_rebuilt(store, stage, pattern, capfd):
    root, first = store
    target = _stage_file(root, stage, pattern)
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])   # truncated
    capfd.readouterr()
    again = run(root)
    err = capfd.readouterr().err
    assert "does not match the checksums" in err and target.parent.name in err
    assert any(not s["reused"] and s["stage"] == stage for s in again.manifest["stages"].values())
    assert sha256_file(target) != "" and target.stat().st_size > 0
    quality = lambda m: m[~m.metric.str.endswith("_per_s")].drop(columns="run_id")   # not the timings
    pd.testing.assert_frame_equal(quality(first.metrics), quality(again.metrics))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_training_checkpoint_is_caught_by_its_checksum_and_not_used(tmp_path, capfd, damage):
    from harness.store.checkpoints import TrainingCheckpoints

    checkpoints = TrainingCheckpoints(tmp_path / "partial", every=1)
    checkpoints.save({"fingerprint": {"name": "x"}, "step": 1, "weights": torch.arange(1000.0)})
    assert checkpoints.load({"name": "x"}, "cpu")["step"] == 1
    state = tmp_path / "partial" / "train_state.pt"
    data = bytearray(state.read_bytes())
    if damage == "truncate":
        del data[-20:]
    else:       # one byte inside the tensor data: still a loadable file, silently wrong without the checksum
        data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    capfd.readouterr()
    assert checkpoints.load({"name": "x"}, "cpu") is None
    assert "does not match the checksum recorded when it was saved" in capfd.readouterr().err


def test_a_corrupted_run_folder_is_left_out_by_readers_and_rerun_by_the_grid(tmp_path, harness_cli, capsys):
    from harness.store.read import load_metrics, run_folders

    spec = tmp_path / "one.toml"
    spec.write_text('name = "one"\nprofile = "ci"\ntasks = ["dart"]\nmethods = ["mle"]\nseeds = [5]\n')
    results = tmp_path / "results"
    assert harness_cli("grid", spec, "--results-dir", results).code == 0
    (folder,) = run_folders(results)
    values = load_metrics(results)
    parquet = folder / "metrics.parquet"
    parquet.write_bytes(parquet.read_bytes()[:-8])
    capsys.readouterr()
    assert run_folders(results) == []
    assert "metrics.parquet does not match the checksum" in capsys.readouterr().err
    proc = harness_cli("grid", spec, "--results-dir", results)
    assert proc.code == 0, proc.err[-3000:]
    assert "is corrupted: metrics.parquet does not match" in proc.err
    assert "1 ran now" in proc.out
    pd.testing.assert_frame_equal(load_metrics(results), values)


# --------------------------------------------------------------------------- safe loading
@WITH_THE_STORE
def test_models_are_safetensors_and_nothing_is_unpickled(store):
    root, _ = store
    cache = root / "cache"
    weights = sorted(p.name for p in cache.rglob("*") if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".pkl")
                     and not p.parent.name.endswith(".partial"))   # resumable training state: weights_only below
    assert weights and set(weights) == {"model.safetensors"}
    sources = {p: p.read_text() for p in (REPO / "harness").rglob("*.py")}
    for path, text in sources.items():
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert not re.search(r"\bpickle\.loads?\(|\bdill\.|joblib\.load", text), path
        assert "trust_remote_code=True" not in text, path


def test_trust_remote_code_is_off_unless_the_user_passes_the_flag(monkeypatch, tmp_path):
    from harness.lm import build as models
    from harness.cli import cli

    assert resolve_config("dart", "mle", "ci").teacher.trust_remote_code is False
    seen = {}

    def fake_config(path, **kwargs):
        seen.update(kwargs)
        raise OSError("stop here")

    import transformers

    monkeypatch.setattr(transformers.AutoModelForSeq2SeqLM, "from_pretrained", fake_config)
    for sets, expected in (([], False), ([("teacher.trust_remote_code", "true")], True)):
        cfg = resolve_config("dart", "mle", "ci", sets=[("teacher.pretrained", str(tmp_path)), *sets])
        seen.clear()
        with pytest.raises(HarnessError):
            models.build_model(cfg.teacher, None)
        assert seen.get("trust_remote_code") is expected
    assert "--trust-remote-code" in [p.opts[0] for p in cli.commands["run"].params if p.opts]


def test_plugins_load_only_from_entry_points_or_files_the_user_names(tmp_path):
    marker = tmp_path / "imported"
    body = f"open({str(marker)!r}, 'w').write('yes')\nfrom harness import register_method\n" \
           "from harness.methods.baselines import MLE\n@register_method('sneaky')\nclass Sneaky(MLE):\n    pass\n"
    for name in ("plugins.py", "harness_plugins.py", "conftest.py", "sitecustomize.py"):
        (tmp_path / name).write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "list"], cwd=tmp_path, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "sneaky" not in proc.stdout and not marker.exists()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "list", "--plugins", "plugins.py"], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "sneaky" in proc.stdout and marker.exists()


# --------------------------------------------------------------------------- long inputs
def test_long_inputs_are_truncated_as_documented_and_counted(tmp_path, capfd):
    from harness.data import tokenize_split

    outcome = run(tmp_path, "mle", **{"tokenizer.max_source_tokens": 12})
    truncated = outcome.manifest["truncated"]
    pipeline = Pipeline(resolve_config("dart", "mle", "ci", sets=[("results_dir", str(tmp_path)),
                                                                  ("tokenizer.max_source_tokens", "12")]))
    pipeline.load_data()
    pipeline.build("tokenizer")
    tokenizer = pipeline.outputs["tokenizer"].tokenizer
    for split, counts in truncated.items():
        examples = pipeline.outputs["data"][split]
        ids = [tokenizer(e.source, add_special_tokens=False)["input_ids"] for e in examples]
        expected = sum(len(i) + 1 > 12 for i in ids)      # + EOS
        assert counts["sources"] == expected > 0, split
        cut = tokenize_split(examples, tokenizer, 12, 10_000)
        assert all(len(s) <= 12 and s[-1] == tokenizer.eos_token_id for s in cut.sources)
    assert re.search(r"\[data\] train: truncated \d+ sources to 12 tokens", capfd.readouterr().err)


# --------------------------------------------------------------------------- names a user gives outside the CLI lists
def test_a_task_plugin_naming_an_unknown_metric_fails_in_one_line():
    from harness.task import Task

    class Typo(Task):
        metrics = ("bleu", "ter")
        lower_is_better = frozenset({"ter"})
        selection_metric = "bleuu"

    with registered(TASKS, "test_task_with_a_metric_typo", Typo), pytest.raises(HarnessError) as info:
        resolve_config("test_task_with_a_metric_typo", "mle", "ci")
    assert str(info.value) == ("task 'test_task_with_a_metric_typo' declares selection_metric='bleuu': unknown "
                               "metric 'bleuu' (did you mean 'bleu'?); known metrics: bleu, ter")


@WITH_THE_STORE
def test_report_with_an_unknown_baseline_row_is_one_line_and_writes_nothing(store, tmp_path):
    root, _ = store
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "report", "--results", str(root), "--out", str(out),
                           "--baseline", "predistil"], capture_output=True, text=True)
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.strip().splitlines() == [
        "harness: error: unknown baseline row 'predistil' (did you mean 'predistill'?); known baseline rows: "
        "none, predistill, seqkd, teacher"]


def test_truncation_side_keeps_the_start_or_the_end():
    from harness.data import tokenize
    from harness.lm import train_tokenizer

    tokenizer = train_tokenizer(["a b c d e f"], 64)      # one token per letter
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert len(ids("a b c d e f")) == 6
    eos = tokenizer.eos_token_id
    (right,), cut = tokenize(tokenizer, ["a b c d e f"], 4)
    assert (right, cut) == (ids("a b c") + [eos], 1)
    (left,), cut = tokenize(tokenizer, ["a b c d e f"], 4, "left")
    assert (left, cut) == (ids("d e f") + [eos], 1)
    (short,), cut = tokenize(tokenizer, ["a b"], 4, "left")
    assert (short, cut) == (ids("a b") + [eos], 0)
    with pytest.raises(ValueError, match="'right' or 'left'"):
        tokenize(tokenizer, ["a"], 4, "middle")


def test_a_dialogue_history_loses_its_oldest_turns(tmp_path):
    """Decoder-only dialogue: an over-long history is cut from the left, so the latest turn
    (the one being answered) stays next to the reply; the tokenizer stage key says so."""
    sets = [("results_dir", str(tmp_path)), ("tokenizer.max_source_tokens", "16")]
    pipeline = Pipeline(resolve_config("commonsense_dialogue", "mle", "ci", sets=sets))
    pipeline.load_data()
    stage = pipeline.build("tokenizer")
    plain_config = {"tokenizer": asdict(pipeline.cfg.tokenizer), "pretrained": None}
    assert stage.key == stage_key("tokenizer", {**plain_config, "source_truncation": "left"},
                                  {"data/train": pipeline.plan.data_keys["train"]}, pipeline.plan["tokenizer"].code)
    split, tokenizer = pipeline.outputs["tokenizer"].splits["train"], pipeline.outputs["tokenizer"].tokenizer
    assert split.truncated_sources > 0
    for example, source in zip(split.examples, split.sources):
        full = tokenizer(example.source, add_special_tokens=False)["input_ids"]
        assert source[:-1] == full[-min(len(full), 15):] and source[-1] == tokenizer.eos_token_id
    # an encoder-decoder task keeps its start, and its tokenizer key has no truncation field
    dart = Pipeline(resolve_config("dart", "mle", "ci", sets=sets))
    dart.load_data()
    assert dart.task.source_truncation == "right"
    plain_config = {"tokenizer": asdict(dart.cfg.tokenizer), "pretrained": None}
    assert dart.build("tokenizer").key == stage_key("tokenizer", plain_config,
                                                    {"data/train": dart.plan.data_keys["train"]},
                                                    dart.plan["tokenizer"].code)


def test_a_task_plugin_declaring_an_unknown_truncation_side_fails_in_one_line():
    from harness.task import Task

    class Odd(Task):
        name = "odd"
        metrics = ("bleu",)
        selection_metric = "bleu"
        source_truncation = "middle"

    with pytest.raises(HarnessError, match="source_truncation='middle': expected 'right'"):
        Odd.check_declaration()


def test_the_data_key_is_the_data_identity_and_follows_local_files(tmp_path):
    """The data enter stage keys by their identity: the task, its data config, and for local data the
    files' contents (not the folder's path); nothing is loaded to compute it."""
    from harness.pipeline.graph import data_key

    def key(folder, **data):
        sets = [("data.source", "local"), ("data.data_dir", str(folder)), *((f"data.{k}", str(v)) for k, v in data.items())]
        cfg = resolve_config("dart", "mle", "ci", sets=sets)
        return data_key(TASKS.get("dart")(cfg.data), "train")

    for name in ("a", "b"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "train.json").write_text("[1]")
        (tmp_path / name / "sub" / "x.json").write_text("[2]")
    assert key(tmp_path / "a") == key(tmp_path / "b")              # the same files elsewhere
    (tmp_path / "b" / "sub" / "x.json").write_text("[3]")
    assert key(tmp_path / "a") != key(tmp_path / "b")              # a changed file
    assert key(tmp_path / "a") != key(tmp_path / "a", max_train_examples=5)
    embedded = TASKS.get("dart")(resolve_config("dart", "mle", "ci").data)
    later = {"merge_test_inputs"}   # settings added later: left out at their defaults
    assert embedded.data_identity() == {"task": "dart", "data": {k: v for k, v in asdict(embedded.data).items()
                                                                 if k not in later}}

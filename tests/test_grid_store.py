"""The results store and the cache under concurrency and crashes (no training here)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pandas as pd
import pytest
from filelock import FileLock

from harness.store.cache import StageCache
from harness.store.io import atomic_dir, sweep_stale
from harness.store.read import load_failures, load_metrics, run_folders
from harness.store.runs import METRIC_COLUMNS


def fake_run(root, run_id, config, params, value):
    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    row = {"run_id": run_id, "task": "dart", "method": "js", "profile": "ci", "seed": 42, "model": "js",
           "split": "test", "metric": "bleu", "value": value, "signature": "", "stage_key": "k", "variant": "",
           **params}
    pd.DataFrame([row]).to_parquet(folder / "metrics.parquet")
    (folder / "manifest.json").write_text(json.dumps({"run_id": run_id, "config": config}))
    return folder


def test_readers_see_complete_runs_only_and_fill_parameter_columns(tmp_path):
    fake_run(tmp_path, "a", {"student": {"encoder_layers": 1}, "method_params": {"beta": 0.5}},
             {"student.encoder_layers": 1, "method.beta": 0.5}, 40.0)
    fake_run(tmp_path, "b", {"student": {"encoder_layers": 2}, "method_params": {"beta": 0.85}}, {}, 41.0)
    half = tmp_path / "runs" / "c"                                # killed before its manifest was written
    half.mkdir()
    pd.DataFrame([{"run_id": "c", "value": 1.0}]).to_parquet(half / "metrics.parquet")
    hidden = tmp_path / "runs" / ".d.tmp-1@host-x"                # a temporary folder of an old version
    hidden.mkdir()
    (hidden / "manifest.json").write_text("{}")
    pd.DataFrame([{"run_id": "d", "value": 1.0}]).to_parquet(hidden / "metrics.parquet")

    assert [p.name for p in run_folders(tmp_path)] == ["a", "b"]
    metrics = load_metrics(tmp_path).set_index("run_id")
    assert list(metrics.columns[: len(METRIC_COLUMNS) - 1]) == [c for c in METRIC_COLUMNS if c != "run_id"]
    assert metrics.loc["b", "student.encoder_layers"] == 2 and metrics.loc["b", "method.beta"] == 0.85
    assert metrics.loc["a", "student.encoder_layers"] == 1
    assert load_metrics(tmp_path, fill_parameters=False)["student.encoder_layers"].isna().sum() == 1


def test_temporary_folders_live_outside_the_store_and_dead_writers_are_swept(tmp_path):
    final, scratch = tmp_path / "runs" / "r1", tmp_path / ".tmp"
    with pytest.raises(RuntimeError):
        with atomic_dir(final, temp_root=scratch) as tmp:
            (tmp / "metrics.parquet").write_text("partial")
            assert tmp.parent == scratch and not list((tmp_path / "runs").iterdir())
            raise RuntimeError("disk full")
    assert not final.exists() and not list(scratch.iterdir())

    # a writer killed with SIGKILL leaves its folder; only dead writers' folders are swept
    child = subprocess.run([sys.executable, "-c", (
        "import os, sys; from harness.store.io import atomic_dir\n"
        f"cm = atomic_dir(__import__('pathlib').Path({str(final)!r}), temp_root=__import__('pathlib').Path({str(scratch)!r}))\n"
        "tmp = cm.__enter__(); (tmp / 'x').write_text('half'); os._exit(9)")])
    assert child.returncode == 9
    with atomic_dir(tmp_path / "runs" / "r2", temp_root=scratch) as live:
        left = sorted(p.name for p in scratch.iterdir())
        assert len(left) == 2
        removed = sweep_stale(scratch)
        assert [p.name for p in removed] == [n for n in left if n != live.name] and live.exists()
    assert (tmp_path / "runs" / "r2").is_dir() and not list(scratch.iterdir())


def test_a_stage_being_built_elsewhere_is_waited_for_and_reused(tmp_path):
    cache = StageCache(tmp_path, log=lambda m: None)
    config, upstream = {"x": 1}, {}
    from harness.store.cache import stage_key

    key = stage_key("teacher", config, upstream)
    other = FileLock(str(cache.lock_path("teacher", key)))    # "another process" holds the build lock
    (tmp_path / "teacher").mkdir(parents=True)
    other.acquire()
    built, result = [], {}

    def build(out):
        built.append(out)
        (out / "w").write_text("mine")

    thread = threading.Thread(target=lambda: result.update(r=cache.get_or_build("teacher", config, upstream, build)))
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive()                                    # waiting for the lock
    # the other builder finishes: it writes the stage the normal way (its own cache object, lock already held)
    other_cache = StageCache(tmp_path, log=lambda m: None)
    record = other_cache._build("teacher", key, config, upstream, lambda out: (out / "w").write_text("theirs"),
                                "teacher", 0.0)
    other.release()
    thread.join(timeout=30)
    assert not built and result["r"].reused and (result["r"].path / "w").read_text() == "theirs"
    assert result["r"].wait_seconds >= 1.0 and record.key == result["r"].key
    assert not cache.partial_path("teacher", key).exists()


def test_failure_records_load_as_a_table(tmp_path):
    from harness.store.runs import clear_failure, write_failure

    write_failure(tmp_path, "r1", {"error_type": "NonFiniteLoss", "error": "non-finite loss at step 3",
                                   "traceback": "Traceback ..."})
    write_failure(tmp_path, "r2", {"error_type": "OutOfMemoryError", "error": "CUDA out of memory"})
    assert sorted(load_failures(tmp_path)["error_type"]) == ["NonFiniteLoss", "OutOfMemoryError"]
    clear_failure(tmp_path, "r1")
    assert list(load_failures(tmp_path)["run_id"]) == ["r2"]
    assert not [p for p in (tmp_path / "failed").iterdir() if p.name.startswith(".")]


def test_the_compute_meter_counts_positions_and_generated_tokens_per_role():
    import gc
    import weakref

    import torch
    import transformers

    from harness.accounting import ComputeMeter

    config = transformers.T5Config(vocab_size=50, d_model=16, d_kv=8, d_ff=16, num_layers=1, num_decoder_layers=1,
                                   num_heads=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    teacher, student = transformers.T5ForConditionalGeneration(config), transformers.T5ForConditionalGeneration(config)
    meter = ComputeMeter()
    meter.track(teacher, "teacher")
    meter.track(meter.track(student, "student"), "student")          # tracking twice counts once
    source = torch.tensor([[3, 4, 5, 1], [6, 7, 1, 0]])
    student(input_ids=source, decoder_input_ids=torch.zeros(2, 3, dtype=torch.long))   # outside a stage: not counted
    with meter.measure() as stats:
        student(input_ids=source, decoder_input_ids=torch.zeros(2, 3, dtype=torch.long))
        out = teacher.generate(input_ids=source, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert stats.student_forward_tokens == 2 * 4 + 2 * 3                    # encoder + decoder positions
    assert stats.teacher_forward_tokens == 2 * 4 + 2 * 4                    # encoder once, 4 cached steps of 1
    assert stats.teacher_generated_tokens == int((out[:, 1:] != 0).sum()) > 0     # non-padding new tokens
    assert stats.student_generated_tokens == 0 and stats.peak_memory_bytes > 0
    ref = weakref.ref(teacher)
    gc.disable()
    try:
        del teacher
        assert ref() is None                                               # no reference cycle keeps it
    finally:
        gc.enable()

"""Every config value is checked against its declared range once, before any work: one
``harness: error:`` line naming the key, the value and the valid range; exit 2; nothing written."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import cli_main
from harness.config import RunConfig, check_fields, range_text, resolve_config, setting
from harness.errors import HarnessError

CASES = [  # --set value → a fragment of the one-line message
    ("kd_train.lr=-1", "kd_train.lr=-1.0: expected > 0"),
    ("kd_train.batch_size=0", "kd_train.batch_size=0: expected >= 1"),
    ("eval_decode.num_beams=0", "eval_decode.num_beams=0: expected >= 1"),
    ("kd_train.optimizer=sgd", "kd_train.optimizer='sgd': expected one of adamw, adafactor"),
    ("kd_train.optimizer=" + "x" * 100_000, "(100002 characters): expected one of adamw, adafactor"),
    ("kd_train.epochs=0", "kd_train.epochs=0: expected > 0"),
    ("student_train.epochs=-1", "student_train.epochs=-1.0: expected >= 0"),
    ("tokenizer.vocab_size=5", "tokenizer.vocab_size=5: expected >= 100"),
    ("seed=-1", "seed=-1: expected >= 0"),
    ("upstream_seed=-3", "upstream_seed=-3: expected >= 0"),
    ("device=gpu", "device='gpu': expected auto, cpu, cuda, cuda:N or mps"),
    ("online_sampling.top_p=1.5", "online_sampling.top_p=1.5: expected > 0 and <= 1"),
    ("kd_train.warmup_ratio=1", "kd_train.warmup_ratio=1.0: expected >= 0 and < 1"),
    ("teacher.dropout=1", "teacher.dropout=1.0: expected >= 0 and < 1"),
    ("teacher.heads=3", "teacher.heads=3: must divide teacher.d_model=32"),
    ("student.encoder_layers=5", "student.encoder_layers=5: at most the teacher's 2"),
    ("eval_decode.min_new_tokens=99", "eval_decode.min_new_tokens=99: at most eval_decode.max_new_tokens=16"),
    ("data.source=ftp", "data.source='ftp': expected one of embedded, local, hub"),
    ("kd_train.precision=fp8", "kd_train.precision='fp8': expected one of no, fp16, bf16"),
    ("method.beta=1.5", "method.beta=1.5"),
    # upper bounds: nothing runs forever or overflows where it is used
    (f"seed={2**70}", f"seed={2**70}: expected >= 0 and <= 4294967295"),
    (f"upstream_seed={2**63}", f"upstream_seed={2**63}: expected >= 0 and <= 4294967295"),
    (f"data.seed={2**40}", "data.seed=1099511627776: expected >= 0 and <= 4294967295"),
    ("kd_train.epochs=1e30", "kd_train.epochs=1e+30: expected >= 0 and <= 1000"),
    (f"kd_train.batch_size={10**23}", f"kd_train.batch_size={10**23}: expected >= 1 and <= 65536"),
    (f"kd_train.max_steps={10**12}", "kd_train.max_steps=1000000000000: expected >= 1 and <= 1000000000"),
    (f"kd_train.grad_accum_steps={10**9}", "kd_train.grad_accum_steps=1000000000: expected >= 1 and <= 65536"),
    ("kd_train.evals_per_epoch=1e9", "kd_train.evals_per_epoch=1000000000.0: expected >= 0 and <= 1000"),
    (f"eval_decode.max_new_tokens={10**9}", "eval_decode.max_new_tokens=1000000000: expected >= 1 and <= 100000"),
    (f"data.train_size={10**12}", "data.train_size=1000000000000: expected >= 1 and <= 100000000"),
    # selecting the best checkpoint needs checkpoints to select from
    ("kd_train.evals_per_epoch=0", "kd_train.select_best=true needs validation checks to select from, but "
                                   "kd_train.evals_per_epoch=0"),
    ("teacher_mode=dropout", "teacher_mode='dropout': expected one of eval, train"),
]


def run_main(monkeypatch, capsys, args: list[str]) -> tuple[int, str]:
    result = cli_main(monkeypatch, capsys, args, allocator=True)
    return result.code, result.err


@pytest.mark.parametrize("pair, message", CASES, ids=[c[0][:40] for c in CASES])
def test_a_bad_value_stops_with_one_line_before_any_work(pair, message, tmp_path, monkeypatch, capsys):
    from harness.pipeline import Pipeline

    def no_work(*args, **kwargs):
        raise AssertionError("a stage started despite a bad value")

    monkeypatch.setattr(Pipeline, "__init__", no_work)
    code, err = run_main(monkeypatch, capsys, ["run", "--task", "dart", "--method", "js", "--profile", "ci",
                                               "--results-dir", str(tmp_path / "results"), "--set", pair])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("harness: error: "), err[:500]
    assert message in lines[0], lines[0]
    assert len(lines[0]) < 400, "an error message is capped in length"
    assert not (tmp_path / "results").exists()


def test_every_profile_of_every_task_is_in_range():
    """The shipped configurations pass their own checks (resolve_config checks every one)."""
    from harness.registry import METHODS, TASKS

    for profile in ("ci", "cpu", "paper"):
        for task in TASKS.names():
            for method in METHODS.names():
                resolve_config(task, method, profile)


def test_every_config_field_says_what_it_is():
    """Each field of every config dataclass carries a one-line help (shown by `harness config`)."""
    def walk(cls, prefix):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{prefix}{f.name} has no help"
            if dataclasses.is_dataclass(f.type if isinstance(f.type, type) else None):
                walk(f.type, f"{prefix}{f.name}.")

    walk(RunConfig, "")
    for name in ("data", "tokenizer", "teacher", "student", "kd_train", "eval_decode"):
        walk(type(getattr(RunConfig(), name)), f"{name}.")


def test_the_range_checks_against_brute_force():
    """check_fields agrees with the bounds written out, for values on and around every edge."""
    @dataclasses.dataclass
    class Probe:
        a: float = setting(0.5, help="a", gt=0.0, le=1.0)
        b: int = setting(1, help="b", ge=1, lt=4)

    for a in (-1.0, 0.0, 1e-9, 0.5, 1.0, 1.0 + 1e-9, float("inf"), float("nan")):
        for b in (0, 1, 3, 4):
            ok = (0.0 < a <= 1.0) and (1 <= b < 4)
            try:
                check_fields(Probe(a, b), "")
                raised = False
            except HarnessError:
                raised = True
            assert raised is not ok, (a, b)
    assert range_text({"gt": 0.0, "le": 1.0}) == "> 0 and <= 1"


# --------------------------------------------------------------------------- the results folder
def test_a_results_dir_that_is_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    for command in (["run", "--task", "dart", "--method", "mle", "--profile", "ci"], ["grid", "--profile", "ci"]):
        code, err = run_main(monkeypatch, capsys, [*command, "--results-dir", str(target)])
        assert code == 2 and err.strip() == f"harness: error: --results-dir {target}: exists and is not a folder"


def test_a_read_only_results_dir_is_one_line(tmp_path, monkeypatch, capsys):
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    code, err = run_main(monkeypatch, capsys, ["run", "--task", "dart", "--method", "mle", "--profile", "ci",
                                               "--results-dir", str(tmp_path / "new" / "results")])
    assert code == 2 and err.strip() == (f"harness: error: --results-dir {tmp_path / 'new' / 'results'}: {tmp_path} "
                                         f"is not writable (a read-only file system); choose another folder")
    assert list(tmp_path.iterdir()) == []


def test_report_takes_results_dir_and_replaces_only_a_report_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "results" / "runs").mkdir(parents=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    code, err = run_main(monkeypatch, capsys, ["report", "--results-dir", str(tmp_path / "results"), "--out", str(mine)])
    assert code == 2 and "holds files a report does not write (thesis.tex)" in err
    assert (mine / "thesis.tex").read_text() == "precious"


def test_the_seed_flag_is_bounded_too(tmp_path, monkeypatch, capsys):
    code, err = run_main(monkeypatch, capsys, ["run", "--profile", "ci", "--results-dir", str(tmp_path / "r"),
                                               "--seed", str(2**70)])
    assert code == 2 and err.strip() == (f"harness: error: seed={2**70}: expected >= 0 and <= 4294967295 "
                                         f"(the method stage's seed)")
    assert not (tmp_path / "r").exists()


def test_selection_without_evaluations_is_fine_when_nothing_is_selected():
    """evals_per_epoch=0 with select_best=false keeps the last checkpoint (the dialogue recipe), and a teacher that
    is not trained (epochs=0) selects nothing; checkpoint_every=0 means never (no resumable checkpoints)."""
    resolve_config("dart", "tvd", "ci", sets=[("kd_train.evals_per_epoch", "0"), ("kd_train.select_best", "false"),
                                             ("teacher_train.epochs", "0"), ("teacher_train.evals_per_epoch", "0"),
                                             ("teacher_train.select_best", "true"), ("checkpoint_every", "0")])


def test_the_largest_seed_seeds_every_generator():
    """The bound is what the generators take: torch, numpy and the evaluation's seed·1000 + k."""
    import random

    import numpy as np
    import torch

    from harness.config import MAX_SEED

    torch.manual_seed(MAX_SEED * 1000 + 999)
    np.random.seed(MAX_SEED)
    random.Random(MAX_SEED)
    with pytest.raises(ValueError):
        np.random.seed(MAX_SEED + 1)   # numpy's legacy seeding stops here: the bound is not looser than it


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    from harness.pipeline import Pipeline

    def no_work(*args, **kwargs):
        raise AssertionError("a stage started on a missing device")

    monkeypatch.setattr(Pipeline, "__init__", no_work)
    for device in ("cuda", "cuda:1"):
        code, err = run_main(monkeypatch, capsys, ["run", "--profile", "ci", "--results-dir", str(tmp_path / "r"),
                                                   "--device", device])
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith(f"harness: error: device={device}: no CUDA device here (torch "), lines[0]
    code, err = run_main(monkeypatch, capsys, ["grid", "--profile", "ci", "--tasks", "dart", "--methods", "mle",
                                               "--results-dir", str(tmp_path / "r"), "--device", "cuda"])
    assert code == 2 and err.startswith("harness: error: device=cuda: no CUDA device here"), err
    assert not (tmp_path / "r").exists()


def test_a_grid_may_still_be_planned_for_devices_elsewhere(tmp_path):
    """A grid planned here may run on Ray nodes with GPUs: planning takes the device's type without checking it."""
    from harness.pipeline.graph import plan_for

    on = {device: plan_for(resolve_config("dart", "mle", "ci", sets=[("device", device)])).keys()
          for device in ("cuda", "cpu")}
    assert on["cuda"]["teacher"] != on["cpu"]["teacher"]   # the device type is part of the teacher's key


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("YES", True), ("on", True), ("", False),
                                       ("0", False), ("false", False), ("No", False), ("off", False), (None, False)])
def test_environment_switches_read_as_documented(value, on, monkeypatch):
    from harness._runtime import env_flag

    if value is None:
        monkeypatch.delenv("HARNESS_NO_MALLOPT", raising=False)
    else:
        monkeypatch.setenv("HARNESS_NO_MALLOPT", value)
    assert env_flag("HARNESS_NO_MALLOPT") is on


def test_an_unreadable_environment_switch_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_NO_MALLOPT", "nope")
    code, err = run_main(monkeypatch, capsys, ["list"])
    assert code == 2 and err.strip() == ("harness: error: HARNESS_NO_MALLOPT='nope': expected one of 1, true, yes, on "
                                         "(on) or 0, false, no, off (off)")

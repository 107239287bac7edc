"""Every config value is checked against its declared range once, before any work: one
``harness: error:`` line naming the key, the value and the valid range; exit 2; nothing written."""

from __future__ import annotations

import dataclasses
import sys

import pytest

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
    ("teacher_mode=dropout", "teacher_mode='dropout': expected one of eval, train"),
]


def run_main(monkeypatch, capsys, args: list[str]) -> tuple[int, str]:
    from harness import cli

    monkeypatch.setattr(sys, "argv", ["harness", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


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

"""The real command line on bad input: one ``harness: error:`` line, exit 2, nothing written.

Every case runs the command line's ``main`` with ``cwd=tmp_path`` and ``--results-dir tmp_path/results``
(two of them as a real ``python -m harness.cli`` process), and checks that the run left no file or folder
anywhere under ``tmp_path`` (so neither the results folder nor a default ``results`` in the working directory
was created).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BUILTIN_METHODS = {"mle", "predistill", "seqkd", "engine", "kl", "rkl", "js", "tvd",
                   "wordkd", "gkd", "skl", "srkl", "akl", "js_online", "tvd_online", "js_exact"}
BUILTIN_TASKS = {"dart", "xsum", "wmt16_en_ro", "commonsense_dialogue"}
DART_FILES = ("dart-v1.1.1-full-train.json", "dart-v1.1.1-full-dev.json", "dart-v1.1.1-full-test.json")
from conftest import cli_main, write_dart_release
TIMEOUT_S = 180


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_one_line_error(code: int, out: str, err: str) -> str:
    detail = f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert code == 2, detail
    assert "Traceback" not in err, detail
    lines = err.strip().splitlines()
    assert len(lines) == 1, detail
    assert lines[0].startswith("harness: error: "), detail
    assert out == "", detail
    return lines[0]


# --------------------------------------------------------------------------- setups
def _no_setup(tmp_path: Path) -> list[str]:
    return []


def _empty_data_dir(tmp_path: Path) -> list[str]:
    folder = tmp_path / "dart_empty"
    folder.mkdir()
    (folder / "README.txt").write_text("not the DART release\n")
    return ["--data-dir", str(folder)]


def _data_dir_without_test_split(tmp_path: Path) -> list[str]:
    """Valid train and dev files, no test file: the last split loaded is the one missing."""
    folder = write_dart_release(tmp_path / "dart_partial", DART_FILES[:2])
    return ["--data-dir", str(folder)]


# id → (args, setup adding more args, fragments the error line must contain)
CASES = {
    "unknown-task": (
        ["--task", "nope"], _no_setup, ["unknown task 'nope'", "known tasks: ", "dart"]),
    "unknown-method": (
        ["--method", "tvdd"], _no_setup,
        ["unknown method 'tvdd'", "did you mean 'tvd'", "known methods: akl, engine, gkd, js, "]),
    "unknown-profile": (
        ["--profile", "gpu"], _no_setup, ["unknown profile 'gpu'", "ci, cpu, paper"]),
    "bad-set-key": (
        ["--set", "kd_train.epoch=2"], _no_setup,
        ["unknown config key 'kd_train.epoch'", "did you mean 'epochs'", "kd_train.epochs"]),
    "bad-set-value": (
        ["--set", "teacher_train.select_best=maybe"], _no_setup,
        ["--set teacher_train.select_best=maybe: expected a boolean"]),
    "zero-processes": (
        ["--processes", "0"], _no_setup, ["--processes", "0"]),
    "set-zero-processes": (
        ["--set", "processes=0"], _no_setup, ["processes"]),
    "set-without-equals": (
        ["--set", "kd_train.epochs"], _no_setup, ["--set expects key=value, got 'kd_train.epochs'"]),
    "missing-data-dir": (
        ["--data-dir", "no_such_folder"], _no_setup, ["--data-dir no_such_folder: no such folder"]),
    "missing-plugin-file": (
        ["--plugins", "missing_plugin.py"], _no_setup, ["plugin file not found: missing_plugin.py"]),
    "data-dir-without-release-files": (
        [], _empty_data_dir,
        ["DART train file not found", "dart_empty", *DART_FILES]),
    "data-dir-without-test-file": (
        [], _data_dir_without_test_split,
        ["DART test file not found", str(Path("dart_partial") / DART_FILES[2])]),
    # the paper profile reads the hub, which is offline here: each task names its data set and --data-dir
    "paper-dart-offline": (
        ["--task", "dart", "--profile", "paper", "--method", "js"], _no_setup,
        ["could not load DART from the hub ('Yale-LILY/dart'", "--data-dir DIR"]),
    "paper-xsum-offline": (
        ["--task", "xsum", "--profile", "paper", "--method", "js"], _no_setup,
        ["could not load XSum from the hub ('EdinburghNLP/xsum'", "--data-dir DIR"]),
    "paper-wmt-offline": (
        ["--task", "wmt16_en_ro", "--profile", "paper", "--method", "js"], _no_setup,
        ["could not load WMT16 from the hub ('wmt/wmt16', config 'ro-en'", "--data-dir DIR"]),
    "paper-dialogue-offline": (
        ["--task", "commonsense_dialogue", "--profile", "paper", "--method", "js"], _no_setup,
        ["gretelai/commonsense-dialogues", "--data-dir"]),
}
#: The cases run as a real ``python -m harness.cli`` process as well: one that stops at the arguments, one that gets
#: past them (torch loaded): nothing else may reach stderr. The others run the same ``main`` in this process
#: (without ~9 s of imports each).
SUBPROCESS_CASES = ("unknown-task", "data-dir-without-test-file")


@pytest.mark.parametrize("case", [pytest.param(case, marks=pytest.mark.clean_registry) if case == "unknown-method" else case
                                  for case in CASES])
def test_run_error_is_one_line_exit_2_and_writes_nothing(case, tmp_path, monkeypatch, no_network, capsys):
    args, setup, fragments = CASES[case]
    args = [*args, *setup(tmp_path)]
    if "--profile" not in args:
        args += ["--profile", "ci"]  # if a check were missing, the run would at least be small
    results = tmp_path / "results"
    before = snapshot(tmp_path)

    command = ["run", *args, "--results-dir", str(results), "--device", "cpu"]
    if case in SUBPROCESS_CASES:
        proc = run_cli(command, cwd=tmp_path)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        monkeypatch.chdir(tmp_path)   # where a default results folder would go
        code, out, err = cli_main(monkeypatch, capsys, command)

    line = assert_one_line_error(code, out, err)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert not results.exists() or not any(results.iterdir()), sorted(snapshot(tmp_path) - before)
    assert snapshot(tmp_path) == before, f"created: {sorted(snapshot(tmp_path) - before)}"


# --------------------------------------------------------------------------- harness list
def parse_list(stdout: str) -> dict[str, dict[str, str]]:
    """``harness list`` output → section → name → rest of the line; a method's parameter lines (indented
    under it) → the "parameters" section: name → its lines."""
    sections: dict[str, dict] = {}
    current, name = None, None
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            assert line.endswith(":"), line
            current = sections.setdefault(line[:-1], {})
        elif line.startswith("   ") and line.strip().startswith("method."):
            sections.setdefault("parameters", {}).setdefault(name, []).append(line.strip())
        else:
            name, _, rest = line.strip().partition(" ")
            current[name] = rest.strip()
    return sections


@pytest.mark.clean_registry
def test_list_shows_tasks_methods_and_profiles(tmp_path):
    proc = run_cli(["list"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "warning" not in proc.stderr
    sections = parse_list(proc.stdout)
    assert list(sections) == ["tasks", "methods", "parameters", "profiles"]
    assert set(sections["tasks"]) == BUILTIN_TASKS
    assert set(sections["methods"]) == BUILTIN_METHODS
    assert list(sections["profiles"]) == ["ci", "cpu", "paper"]
    # Each method shows its prefix sources and the first line of its docstring.
    assert sections["methods"]["tvd"].startswith("[teacher_offline, student_sample] Symmetric step-wise TVD")
    assert sections["methods"]["js"].startswith("[student_sample, teacher_offline]")
    assert sections["methods"]["mle"].startswith("[ground_truth]")
    assert sections["tasks"]["dart"].startswith("Linearised triples")
    # each method's parameters with their default, valid range and help
    assert sections["parameters"]["js"] == ["method.beta=0.5  (>= 0 and <= 1)  weight of the student's samples "
                                            "(1−β: the teacher's offline outputs)",
                                            "method.beta by task (every profile; a run takes its task's): "
                                            "commonsense_dialogue 0.85, dart 0.85, wmt16_en_ro 0.25, xsum 0.85"]
    assert "method.temperature by task (profile paper; a run takes its task's): wmt16_en_ro 2.0, xsum 2.0" \
        in sections["parameters"]["predistill"]
    assert "tvd" not in sections["parameters"]
    assert snapshot(tmp_path) == set()


@pytest.mark.clean_registry
def test_list_with_a_plugin_file_shows_its_method(tmp_path):
    plugin = tmp_path / "my_plugins.py"
    plugin.write_text(textwrap.dedent('''
        from harness import register_method
        from harness.methods import Method

        @register_method("my_div")
        class MyDiv(Method):
            """My divergence: a test plugin on greedy student prefixes."""

            prefixes = {"student_greedy": 1.0}
    '''))
    proc = run_cli(["list", "--plugins", str(plugin)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    methods = parse_list(proc.stdout)["methods"]
    assert set(methods) == BUILTIN_METHODS | {"my_div"}
    assert methods["my_div"] == "[student_greedy] My divergence: a test plugin on greedy student prefixes."


# --------------------------------------------------------------------------- in-process: the same contract, cheaper
def run_main(monkeypatch, capsys, args: list[str]) -> tuple[int, str, str]:
    """``harness ARGS`` in this process (no second torch import): exit code, stdout, stderr."""
    return tuple(cli_main(monkeypatch, capsys, args))


def one_error_line(code: int, err: str, expected_code: int = 2) -> str:
    """The one ``harness: error:`` line of a failed command (anything before it is progress logging)."""
    assert code == expected_code, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    errors = [line for line in err.strip().splitlines() if line.startswith("harness: error: ")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err[-2000:]
    return errors[0]


GRID_CASES = {  # id → (spec file text or None, grid arguments, a fragment of the error line)
    "empty-spec": ('name = "empty"\n', [], "names neither tasks nor methods"),
    "spec-of-only-a-profile": ('name = "p"\nprofile = "ci"\n', [], "names neither tasks nor methods"),
    "too-many-cells": (None, ["table2", "--axis", "kd_train.lr=" + ",".join(f"{(i + 1) * 1e-5:g}" for i in range(10))],
                       "grid table2 has 1280 cells (tasks × methods × seeds × axes), more than 500: add --yes"),
    "workers-0": (None, ["table2", "--workers", "0"], "Invalid value for '--workers': 0 is not in the range x>=1"),
    "workers-negative": (None, ["table2", "--workers", "-3"], "Invalid value for '--workers': -3 is not in the range"),
}


@pytest.mark.parametrize("case", [pytest.param(case, marks=pytest.mark.clean_registry) if case == "too-many-cells" else case
                                  for case in GRID_CASES])
def test_grid_error_is_one_line_exit_2_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    import harness.grid

    text, args, fragment = GRID_CASES[case]
    if text is not None:
        (tmp_path / "spec.toml").write_text(text)
        args = [str(tmp_path / "spec.toml"), *args]
    monkeypatch.setattr(harness.grid, "expand", lambda *a, **k: pytest.fail("cells were expanded"))
    before = snapshot(tmp_path)
    code, out, err = run_main(monkeypatch, capsys, ["grid", *args, "--profile", "ci",
                                                    "--results-dir", str(tmp_path / "results")])
    assert fragment in one_error_line(code, err) and out == ""
    assert snapshot(tmp_path) == before


def test_a_large_grid_runs_with_yes(tmp_path, monkeypatch, capsys):
    """--yes lets the large grid through to planning (its dry run lists every cell)."""
    from harness import grid

    planned = []
    monkeypatch.setattr(grid, "plan_grid", lambda cells: planned.extend(cells) or [])
    monkeypatch.setattr(grid, "format_plan", lambda *a: "planned")
    monkeypatch.setattr("harness.grid.spec.MAX_CELLS_UNASKED", 3)
    code, out, err = run_main(monkeypatch, capsys, ["grid", "table2", "--tasks", "dart", "--methods", "mle,kl",
                                                    "--seeds", "1,2", "--profile", "ci", "--dry-run", "--yes",
                                                    "--results-dir", str(tmp_path / "results")])
    assert code == 0 and out.strip() == "planned" and len(planned) == 4, err


def test_a_run_whose_loss_turns_nan_is_one_line_exit_1_and_recorded_as_the_grid_does(tmp_path, monkeypatch, capsys):
    import json

    plugin = tmp_path / "nan_plugin.py"
    plugin.write_text(textwrap.dedent('''
        from harness import register_method
        from harness.methods.baselines import MLE

        @register_method("nan_loss_run")
        class NaNLoss(MLE):
            """MLE whose loss is NaN."""

            def token_loss(self, student_logits, teacher_logits, tokens, source):
                return super().token_loss(student_logits, teacher_logits, tokens, source) * float("nan")
    '''))
    results = tmp_path / "results"
    from harness.registry import METHODS

    # the plugin file registers its method in this process: take it out again, so that no later test of the
    # same worker lists it among the built-in methods
    METHODS.names()   # the built-ins loaded first, so that the copy holds them
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))
    code, out, err = run_main(monkeypatch, capsys, [
        "run", "--plugins", str(plugin), "--method", "nan_loss_run", "--profile", "ci", "--device", "cpu",
        "--results-dir", str(results), "--set", "teacher_train.epochs=0", "--set", "data.train_size=16",
        "--set", "data.validation_size=4", "--set", "data.test_size=4", "--set", "teacher_dist_samples=0"])
    line = one_error_line(code, err, expected_code=1)
    records = list((results / "failed").glob("*.json"))
    assert len(records) == 1, line
    run_id = records[0].stem
    assert line == (f"harness: error: run {run_id} failed: NonFiniteLoss: non-finite loss at step 1: "
                    f"{{'ground_truth': nan}} (traceback: {records[0]})")
    record = json.loads(records[0].read_text())
    assert record["error_type"] == "NonFiniteLoss" and record["details"]["what"] == "loss"
    assert "Traceback" in record["traceback"] and record["config"]["method"] == "nan_loss_run"
    assert record["method"] == "nan_loss_run" and record["task"] == "dart" and record["axes"] == {}
    assert not (results / "runs").exists() or not any((results / "runs").iterdir())   # no run folder


def test_a_transformers_older_than_the_code_needs_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    """transformers 5.23 rejects beam search's ``cache`` keyword minutes into a run (seen on a GPU image): the
    check at start names the version and the fix instead."""
    import harness.requirements

    real = harness.requirements.version
    monkeypatch.setattr(harness.requirements, "version",
                        lambda name: "5.23.0" if name == "transformers" else real(name))
    code, out, err = run_main(monkeypatch, capsys, ["run", "--task", "dart", "--method", "kl", "--profile", "ci",
                                                    "--results-dir", str(tmp_path / "results")])
    assert one_error_line(code, err) == ("harness: error: transformers 5.23.0 is installed; harness needs "
                                         "transformers>=5.24 (pip install -U 'transformers>=5.24')")
    assert list(tmp_path.iterdir()) == []
    code, out, err = run_main(monkeypatch, capsys, ["run", "--help"])   # help needs no library
    assert code == 0 and "harness run [OPTIONS]" in out and not err
    monkeypatch.setattr(harness.requirements, "version", lambda name: "5.24.0.dev0")   # a build of 5.24 is 5.24
    harness.requirements.check_libraries()


def test_the_installer_s_bounds_are_the_ones_checked_at_start():
    import tomllib

    from packaging.requirements import Requirement

    from harness.requirements import MINIMUM

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    bounds = {r.name: r.specifier for r in map(Requirement, project["dependencies"])}
    for name, least in MINIMUM.items():
        assert str(bounds[name]) == f">={least}", name


def test_report_on_a_missing_results_folder_is_one_line_and_creates_nothing(tmp_path, monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, ["report", "--results-dir", str(tmp_path / "nowhere")])
    assert one_error_line(code, err) == (f"harness: error: --results-dir {tmp_path / 'nowhere'}: no such folder; "
                                         f"`harness run` or `harness grid` writes one")
    assert list(tmp_path.iterdir()) == []


def test_a_ci_run_says_its_numbers_mean_nothing(tmp_path, monkeypatch, capsys):
    """The ci profile's teacher scores about 0 BLEU: the run's table comes with a line saying what ci is for."""
    from types import SimpleNamespace

    import harness.grid.cells
    import harness.reporting.run_table

    monkeypatch.setattr(harness.grid.cells, "run_and_record",
                        lambda cfg, report_to=(): SimpleNamespace(manifest={"stages": {}}, path=tmp_path / "run"))
    monkeypatch.setattr(harness.reporting.run_table, "format_run_table", lambda outcome: "TABLE")
    for profile, noted in (("ci", True), ("cpu", False)):
        code, out, err = run_main(monkeypatch, capsys, ["run", "--profile", profile,
                                                        "--results-dir", str(tmp_path / "results")])
        assert code == 0 and out.startswith("TABLE\n"), err
        assert ("note: the ci profile only checks that every stage runs" in out) is noted, out

"""The real command line on bad input: one ``harness: error:`` line, exit 2, nothing written.

Every case runs ``python -m harness.cli`` in a subprocess with ``cwd=tmp_path`` and
``--results-dir tmp_path/results``, and checks that the run left no file or folder
anywhere under ``tmp_path`` (so neither the results folder nor a default ``results``
in the working directory was created). Cases that get past argument checking load
torch, so each takes a few seconds.
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
from conftest import write_dart_release
TIMEOUT_S = 180


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_one_line_error(proc: subprocess.CompletedProcess) -> str:
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 2, detail
    assert "Traceback" not in proc.stderr, detail
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, detail
    assert lines[0].startswith("harness: error: "), detail
    assert proc.stdout == "", detail
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
}


@pytest.mark.parametrize("case", list(CASES))
def test_run_error_is_one_line_exit_2_and_writes_nothing(case, tmp_path):
    args, setup, fragments = CASES[case]
    args = [*args, *setup(tmp_path)]
    if "--profile" not in args:
        args += ["--profile", "ci"]  # if a check were missing, the run would at least be small
    results = tmp_path / "results"
    before = snapshot(tmp_path)

    proc = run_cli(["run", *args, "--results-dir", str(results), "--device", "cpu"], cwd=tmp_path)

    line = assert_one_line_error(proc)
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
                                            "(1−β: the teacher's offline outputs)"]
    assert "tvd" not in sections["parameters"]
    assert snapshot(tmp_path) == set()


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

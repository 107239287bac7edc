"""Shared test setup.

The environment block runs at import time, before any test module (or harness
itself) imports ``transformers``/``datasets``: those libraries read these variables
once, when they are first imported. Subprocesses started by tests inherit them.
"""

from __future__ import annotations

import os

# --------------------------------------------------------------------------- environment
# Tests never touch the network: the hub libraries must fail fast instead of retrying.
_TEST_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # One thread per process: the suite runs in parallel workers (pytest-xdist, `-n` in pyproject.toml) and
    # tests start CLI subprocesses; more threads than cores only makes every process wait for the others.
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    # The few tests that ask for more threads (that --threads reaches a stage) share the cores with the other
    # worker: OpenMP's idle threads must sleep, not spin (a 2-thread ci cell took 4.5x the CPU time spinning).
    "OMP_WAIT_POLICY": "PASSIVE",
    # Ray lowers its workers' priority (nice 15): beside other niced work on the machine (a background job at nice
    # 5 left them about 5 % of a core each), a Ray test's cells waited minutes for CPU that the suite did not use.
    "RAY_worker_niceness": "0",
}
os.environ.update(_TEST_ENV)

# --------------------------------------------------------------------------- installed plugins
# Some tests check the registries of a clean install (the README's): the exact list of methods, the "known
# methods" of an error line, a grid's size over every method. A package installed beside harness that registers a
# task or method by entry point (the example `examples/harness-hellinger`, once pip-installed) adds its names there,
# so those tests, marked `clean_registry`, are skipped with the names that came in, instead of failing.


def installed_plugins() -> list[str]:
    """The tasks and methods that distributions other than harness register by entry point, as "name (dist)"."""
    from importlib.metadata import entry_points

    from packaging.utils import canonicalize_name

    found = set()
    for group in ("harness.tasks", "harness.methods"):
        for point in entry_points(group=group):
            dist = point.dist.name if point.dist is not None else "?"
            if canonicalize_name(dist) != "fdistill-harness":
                found.add(f"{point.name} ({dist})")
    return sorted(found)


def pytest_collection_modifyitems(config, items):
    import pytest

    plugins = installed_plugins()
    if not plugins:
        return
    skip = pytest.mark.skip(reason="checks a clean install's registries; installed plugins add "
                                   + ", ".join(plugins) + " (pip uninstall them to run it)")
    for item in items:
        if item.get_closest_marker("clean_registry") is not None:
            item.add_marker(skip)


# --------------------------------------------------------------------------- hypothesis
# Property tests try the same examples on every run (seeded by each test's name), so a
# failure in CI is one anyone can reproduce; HYPOTHESIS_PROFILE=explore searches afresh.
from hypothesis import settings  # noqa: E402

settings.register_profile("harness", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "harness"))

# --------------------------------------------------------------------------- fixtures
from pathlib import Path  # noqa: E402
from typing import NamedTuple  # noqa: E402

DART_FIXTURES = Path(__file__).parent / "fixtures" / "dart"
# Hand-written records in the DART release format; stored under short names so that
# nothing in the repository looks like a copy of the real release files.
DART_FIXTURE_FOR = {"dart-v1.1.1-full-train.json": "train.json", "dart-v1.1.1-full-dev.json": "dev.json",
                    "dart-v1.1.1-full-test.json": "test.json"}


def write_dart_release(folder: Path, names=tuple(DART_FIXTURE_FOR)) -> Path:
    """Lay the fixtures out as a DART release folder (the file names ``--data-dir`` expects)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(DART_FIXTURES / DART_FIXTURE_FOR[name], folder / name)
    return folder


# --------------------------------------------------------------------------- the ci grid, once per session
import pytest  # noqa: E402


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


#: The harness modules that bind library functions by name (``from ..lm import load_model``): imported before a test
#: replaces such a function, so that :func:`patch_everywhere` finds every binding.
BINDING_MODULES = ("harness.cli", "harness.pipeline.run", "harness.pipeline.stages", "harness.pipeline.graph",
                   "harness.grid.cells", "harness.evaluate", "harness.train", "harness.data")


def patch_everywhere(monkeypatch, module, name: str, fake) -> None:
    """Replace ``module.name`` and every harness module's binding of the same function for this test only. Patching
    the defining module alone misses the modules that imported the name before, and leaks into every later test of
    the worker through a module first imported during this one (it binds the fake for good)."""
    import importlib
    import sys

    for loaded in BINDING_MODULES:
        importlib.import_module(loaded)
    original = getattr(module, name)
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("harness") and getattr(mod, name, None) is original:
            monkeypatch.setattr(mod, name, fake)


def _call_main(monkeypatch, args, allocator: bool = False) -> int:
    """``harness ARGS`` in this process → its exit code (what :func:`cli_main` and :func:`cli_in_process` share)."""
    import sys

    from harness import cli

    if not allocator:
        monkeypatch.setattr(cli, "tune_allocator", lambda: None)   # a process setting: not this test process's
    torch = sys.modules.get("torch")   # not imported yet: torch's threads will be the suite's OMP_NUM_THREADS
    threads = torch.get_num_threads() if torch is not None else int(os.environ["OMP_NUM_THREADS"])
    monkeypatch.setattr(sys, "argv", ["harness", *map(str, args)])
    code = 0
    try:
        cli.main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
    return code


def cli_main(monkeypatch, capsys, args, allocator: bool = False) -> CliResult:
    """``harness ARGS`` in this test's process → ``CliResult(code, out, err)``.

    For the tests of what a command does, not of the process it runs in: a CLI subprocess that builds a model
    pays about 9 CPU-seconds of imports (torch, transformers) before its first line of work. What a command sets
    for its process (torch's threads) is given back after it; the allocator is left alone unless ``allocator``
    (the tests of its switch).
    """
    code = _call_main(monkeypatch, args, allocator)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def cli_in_process(*args) -> "subprocess.CompletedProcess":
    """``harness ARGS`` in this process outside a test's fixtures (a session fixture's), as a finished process:
    the exit code, and the output captured here; an unexpected exception is exit 1 with its traceback on stderr,
    as in a subprocess."""
    import contextlib
    import io
    import subprocess
    import traceback

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = _call_main(monkeypatch, args)
        except Exception:
            traceback.print_exc(file=err)
            code = 1
    return subprocess.CompletedProcess(["harness", *map(str, args)], code, out.getvalue(), err.getvalue())


def fresh_registry() -> tuple[list[str], list[str]]:
    """Task and method names as a fresh process sees them (tests may register plugins in this one)."""
    import subprocess
    import sys

    code = ("from harness.registry import TASKS, METHODS; "
            "print(','.join(TASKS.names())); print(','.join(METHODS.names()))")
    tasks, methods = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout.split()
    return tasks.split(","), methods.split(",")


@pytest.fixture
def harness_cli(monkeypatch, capsys):
    """:func:`cli_main` as ``harness_cli(*args)``."""
    return lambda *args: cli_main(monkeypatch, capsys, args)


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Offline mode everywhere, a private cache, and a socket that cannot connect (the hub loaders' tests)."""
    import socket

    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # Both libraries read the environment at import time, so patch their constants too.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")

    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


#: The ci grid's cells: every task × every method at seed 42; four of DART's methods at seed 43 as well (the rows
#: that tests compare across seeds: selection, the bundle's slice, a sequential look, a shared teacher).
CI_GRID_SEEDS, CI_GRID_SECOND_SEED = (42,), 43
CI_GRID_SECOND_SEED_METHODS = ("mle", "predistill", "kl", "seqkd")
#: Smaller splits than the ci profile's (40/8/10): the grid checks that every cell runs and what its rows say, and
#: these cut its cells' time by a third. Whatever plans or resolves the grid's cells again passes them too.
CI_GRID_SETS = {"data.train_size": "16", "data.validation_size": "4", "data.test_size": "6"}
CI_GRID_SET_ARGS = [arg for key, value in CI_GRID_SETS.items() for arg in ("--set", f"{key}={value}")]


def ci_grid_config(task: str, method: str, sets=(), **kwargs):
    """The resolved config of a ci grid cell (``sets`` on top of the grid's own)."""
    from harness.config import resolve_config

    return resolve_config(task, method, "ci", sets=[*CI_GRID_SETS.items(), *sets], **kwargs)


@pytest.fixture(scope="session")
def ci_grid(tmp_path_factory):
    """``harness grid --profile ci`` (with :data:`CI_GRID_SETS`) — every task × every method at seed 42, four of DART's
    at seed 43 too — run once per session (a second seed on every task doubled the suite's longest set-up and tested nothing more).

    Tests that need "every method on every task" read its results instead of training
    their own cells. Returns the results folder and the finished command (:func:`cli_in_process`).

    Under pytest-xdist every worker that needs it runs the same grid command on one shared
    folder: the grid's cell and stage locks split the cells between them (each runner
    waits for the cells another one holds), so the grid costs its cell-time divided by the
    workers, not times them. Each runs in its worker's process (whose torch and transformers are imported already:
    two grid subprocesses per worker paid about 10 CPU-seconds of imports each); "every" task and method is named
    as a fresh process has them registered, not as this one may (tests register plugins in it).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        root, workers = tmp_path_factory.mktemp("ci-grid"), "2"
    else:   # the session's shared temporary folder (the parent of this worker's own)
        root, workers = tmp_path_factory.getbasetemp().parent / "ci-grid", "1"
        root.mkdir(exist_ok=True)
    from harness.registry import METHODS, TASKS

    tasks, methods = fresh_registry()
    grid = ["grid", "--profile", "ci", *CI_GRID_SET_ARGS, "--results-dir", root, "--workers", workers]
    every = [] if (TASKS.names(), METHODS.names()) == (tasks, methods) else [   # (the spec's "all": unless plugins)
        "--tasks", ",".join(tasks), "--methods", ",".join(methods)]
    proc = cli_in_process(*grid, *every, "--seeds", ",".join(map(str, CI_GRID_SEEDS)))
    if proc.returncode == 0:   # a second seed where tests compare seeds (one teacher shared by both)
        proc = cli_in_process(*grid, "--tasks", "dart", "--methods", ",".join(CI_GRID_SECOND_SEED_METHODS),
                              "--seeds", str(CI_GRID_SECOND_SEED))
    return root, proc

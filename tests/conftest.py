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
}
os.environ.update(_TEST_ENV)

# --------------------------------------------------------------------------- hypothesis
# Property tests try the same examples on every run (seeded by each test's name), so a
# failure in CI is one anyone can reproduce; HYPOTHESIS_PROFILE=explore searches afresh.
from hypothesis import settings  # noqa: E402

settings.register_profile("harness", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "harness"))

# --------------------------------------------------------------------------- fixtures
from pathlib import Path  # noqa: E402

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


@pytest.fixture(scope="session")
def ci_grid(tmp_path_factory):
    """``harness grid --profile ci`` — every task × every method × seeds 42 and 43 — run once per session.

    Tests that need "every method on every task" read its results instead of training
    their own cells. Returns the results folder and the finished process.
    """
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("ci-grid")
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "grid", "--profile", "ci", "--results-dir", str(root),
                           "--workers", "2"], capture_output=True, text=True)
    return root, proc

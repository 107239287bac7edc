"""An out-of-tree method needs no fork: the example package under examples/ is installed into a
temporary folder (the environment is not touched) and found through its entry point."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import CI_GRID_SET_ARGS

from harness.registry import METHODS
from harness.testing import check_engine_step, check_token_loss

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "harness-hellinger"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """``pip install --no-deps --no-build-isolation --target SITE`` of a copy of the example (no network)."""
    source = tmp_path_factory.mktemp("example-src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("example-site")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", "--target", str(target), str(source)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def harness_cli(*args: str, site: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO)


def test_the_install_declares_the_entry_point(site):
    (dist,) = site.glob("harness_hellinger-*.dist-info")
    entry_points = (dist / "entry_points.txt").read_text()
    assert "[harness.methods]" in entry_points and "hellinger = harness_hellinger:Hellinger" in entry_points


def test_harness_list_shows_the_installed_method(site):
    proc = harness_cli("list", site=site)
    assert proc.returncode == 0, proc.stderr
    assert "could not load" not in proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if line.split()[:1] == ["hellinger"]]
    assert "[teacher_offline, student_sample]" in line and "squared Hellinger" in line


@pytest.mark.clean_registry
def test_without_the_install_the_method_is_unknown():
    proc = harness_cli("run", "--method", "hellinger", "--profile", "ci")
    assert proc.returncode == 2
    assert "unknown method 'hellinger'" in proc.stderr


@pytest.mark.slow
def test_harness_run_trains_and_writes_parquet_rows(site, tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "ci-results"          # shared with the other ci runs of the session
    root.mkdir(exist_ok=True)
    proc = harness_cli("run", "--task", "dart", "--method", "hellinger", "--profile", "ci", *CI_GRID_SET_ARGS,
                       "--results-dir", str(root), "--set", "kd_train.max_steps=2",
                       "--set", "kd_train.evals_per_epoch=0",
                       "--set", "kd_train.select_best=false", site=site)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(re.search(r"^results: (.+)$", proc.stdout, re.MULTILINE).group(1).strip())
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    assert (metrics["method"] == "hellinger").all()
    assert {"teacher", "predistill", "hellinger"} <= set(metrics["model"])
    mine = metrics[metrics["model"] == "hellinger"].set_index("metric")["value"]
    assert {"bleu", "chrf", "ter", "r_llh", "r_cvg"} <= set(mine.index) and mine.notna().all()
    curves = pd.read_parquet(run_dir / "curves.parquet")
    assert {"loss/teacher_offline", "loss/student_sample"} <= set(curves["name"])


def _load_example_module():
    spec = importlib.util.spec_from_file_location("harness_hellinger_under_test",
                                                  EXAMPLE / "harness_hellinger" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.clean_registry
def test_the_plugin_passes_the_testing_helpers(seed):
    """What a plugin author runs: harness.testing's checks of the token loss and of one engine step."""
    Hellinger = _load_example_module().Hellinger
    check_token_loss(Hellinger(), seed=seed, vocab=7 + seed)
    if seed == 0:
        assert check_engine_step(Hellinger()) > 0
    assert "hellinger" not in METHODS   # importing the module registered nothing: the entry point does that


# --------------------------------------------------------------------------- the guide's examples run as written
GUIDE = REPO / "docs" / "plugins.md"


def _guide_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    (block,) = [b for b in blocks if marker in b]
    return block


@pytest.mark.clean_registry
def test_the_guides_worked_examples_run(tmp_path):
    """docs/plugins.md's method and task, loaded as ``--plugins`` files, register and work."""
    from harness.config import DataConfig
    from harness.registry import TASKS, load_plugin_file
    from harness.testing import make_method

    method_file, task_file = tmp_path / "guide_hellinger.py", tmp_path / "guide_reverse.py"
    method_file.write_text(_guide_block('@register_method("hellinger")'))
    task_file.write_text(_guide_block('@register_task("reverse")'))
    assert len(_guide_block('@register_method("hellinger")').strip().splitlines()) <= 32
    try:
        load_plugin_file(method_file)
        load_plugin_file(task_file)
        method = make_method("hellinger", {"teacher_weight": "0.3"})
        assert method.prefix_weights() == pytest.approx({"teacher_offline": 0.3, "student_sample": 0.7})
        check_token_loss(method, seed=1)
        task = TASKS.get("reverse")(DataConfig(train_size=6, validation_size=2, test_size=3))
        test = task.load("test")
        assert len(test) == 3 and test[0].target == " ".join(reversed(test[0].source.split()))
        scores = task.score([e.target for e in test], [e.references for e in test])
        assert scores.corpus["chrf"] == pytest.approx(100.0) and set(scores.corpus) == {"bleu", "chrf", "ter"}
    finally:
        for registry, name in ((METHODS, "hellinger"), (TASKS, "reverse")):
            cls = registry._items.get(name)
            if cls is not None and cls.__module__.startswith("harness_plugin_guide_"):
                registry._items.pop(name)
                sys.modules.pop(cls.__module__, None)

"""``harness grid`` end to end on tiny ci cells: failure isolation, worker processes, two runners at once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store.read import load_failures, load_metrics, run_folders

pytestmark = pytest.mark.slow

TINY = """
tasks = ["dart"]
seeds = [42]
[set]
"data.train_size" = 16
"data.validation_size" = 4
"data.test_size" = 4
"teacher_dist_samples" = 0
"teacher_train.max_steps" = 2
"student_train.max_steps" = 2
"kd_train.max_steps" = 2
"""

PLUGINS = '''
import os, signal

from harness import register_method
from harness.methods.baselines import MLE


@register_method("nan_loss")
class NaNLoss(MLE):
    """MLE whose loss is NaN."""

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return super().token_loss(student_logits, teacher_logits, tokens, source) * float("nan")


@register_method("flaky")
class Flaky(MLE):
    """MLE that raises while HARNESS_TEST_FAIL is set."""

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        if os.environ.get("HARNESS_TEST_FAIL"):
            raise RuntimeError("flaky failure")
        return super().token_loss(student_logits, teacher_logits, tokens, source)


@register_method("dies")
class Dies(MLE):
    """Kills its own process, as the out-of-memory killer would."""

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        os.kill(os.getpid(), signal.SIGKILL)
'''


def harness_grid(*args, env=None, **kwargs):
    import os

    return subprocess.Popen([sys.executable, "-m", "harness.cli", "grid", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, **kwargs)


def done(proc, code):
    out, err = proc.communicate(timeout=1800)
    assert proc.returncode == code, f"{out}\n{err[-4000:]}"
    return out, err


def spec_file(tmp_path: Path, name: str, methods: list[str]) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\nmethods = {json.dumps(methods)}\n' + TINY)
    return path


def stage_threads(folder: Path) -> dict[str, int]:
    """{stage: torch threads of the process that built it} of a run folder."""
    stages = json.loads((folder / "manifest.json").read_text())["stages"]
    return {name: stage["host"]["torch_threads"] for name, stage in stages.items()}


def test_failing_cells_are_recorded_and_the_others_go_on(tmp_path, harness_cli, monkeypatch):
    """Also: --threads reaches every stage built, whether the cells run in worker processes (whose default is the
    cores shared among them) or in the grid's own process (whose default is the suite's one thread)."""
    import os

    plugins = tmp_path / "plugins.py"
    plugins.write_text(PLUGINS)
    spec = spec_file(tmp_path, "failures", ["mle", "nan_loss", "flaky", "dies"])
    results = tmp_path / "results"
    in_workers = 2 if max(1, (os.cpu_count() or 1) // 2) != 2 else 3     # not the default: it must be passed on
    in_process = in_workers + 1

    out, _ = done(harness_grid(spec, "--profile", "ci", "--results-dir", results, "--plugins", plugins,
                               "--workers", "2", "--threads", in_workers, env={"HARNESS_TEST_FAIL": "1"}), 1)
    assert "1 ran now, 0 already done, 3 failed" in out
    assert re.search(r"dart-nan_loss-\S+: NonFiniteLoss: non-finite loss at step 1", out)
    assert re.search(r"dart-flaky-\S+: RuntimeError: flaky failure", out)
    assert re.search(r"dart-dies-\S+: WorkerDied: its worker process ended with exit code -9", out)
    failures = load_failures(results).set_index("method")
    assert set(failures.index) == {"nan_loss", "flaky", "dies"}
    assert "Traceback" in failures.loc["flaky", "traceback"] and failures.loc["flaky", "config"]["method"] == "flaky"
    assert failures.loc["nan_loss", "details"]["what"] == "loss"
    assert [p.name.split("-")[1] for p in run_folders(results)] == ["mle"]
    assert set(stage_threads(run_folders(results)[0]).values()) == {in_workers}
    logs = {p.name.split("-")[1]: p.read_text() for p in (results / "logs").glob("*.log")}
    assert "[teacher] building teacher" in logs["mle"] + logs["nan_loss"]

    # run again without the failure switch (and without the cell that kills its worker), in this process: the
    # grid's own process runs its cells when it has no workers (a subprocess would only add its imports). The plugin
    # file registers its methods in this process: take them out again, so that no later test of the same worker
    # lists them among the built-in methods
    from harness.registry import METHODS

    METHODS.names()   # the built-ins loaded first, so that the copy holds them
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))
    again = harness_cli("grid", spec, "--profile", "ci", "--results-dir", results, "--plugins", plugins,
                        "--methods", "mle,nan_loss,flaky", "--threads", in_process)
    assert again.code == 1 and "1 ran now, 1 already done, 1 failed" in again.out, f"{again.out}\n{again.err[-4000:]}"
    assert set(load_failures(results)["method"]) == {"nan_loss", "dies"}      # flaky's record is gone
    assert sorted(p.name.split("-")[1] for p in run_folders(results)) == ["flaky", "mle"]
    flaky = stage_threads(next(p for p in run_folders(results) if p.name.split("-")[1] == "flaky"))
    assert flaky["method"] == in_process and flaky["teacher"] == in_workers   # built now; reused from the first
    leftovers = [p for p in (results / "cache").glob("*/.*") if ".tmp-" in p.name]
    assert not leftovers                                                       # the dead worker's, swept
    metrics = load_metrics(results)
    assert not metrics.duplicated(["run_id", "model", "metric"]).any()


def test_two_runners_on_one_results_directory_share_the_work(tmp_path):
    spec = spec_file(tmp_path, "shared", ["mle", "predistill", "seqkd"])
    results = tmp_path / "results"
    args = (spec, "--profile", "ci", "--results-dir", results)
    first, second = harness_grid(*args, "--workers", "2"), harness_grid(*args)
    (out_a, err_a), (out_b, err_b) = done(first, 0), done(second, 0)

    ran = {name: set(re.findall(r"\] ran\s+#\d+ (\S+)", out)) for name, out in (("a", out_a), ("b", out_b))}
    assert not ran["a"] & ran["b"]                                   # no cell ran twice
    assert ran["a"] | ran["b"] == {p.name for p in run_folders(results)} and len(ran["a"] | ran["b"]) == 3
    logs = err_a + err_b + "".join(p.read_text() for p in (results / "logs").glob("*.log"))
    builds = re.findall(r"\] building (\w+) ([0-9a-f]{16})", logs)
    assert len(builds) == len(set(builds))                          # every stage built once
    assert sum(stage == "teacher" for stage, _ in builds) == 1
    assert "3 cells:" in out_a and "3 cells:" in out_b


@pytest.mark.parametrize("option", ["--threads", "--workers"])
def test_local_options_with_ray_are_a_one_line_error(tmp_path, option):
    out, err = done(harness_grid("table2", "--executor", "ray", option, "2", "--dry-run",
                                 "--results-dir", tmp_path / "results"), 2)
    assert err.strip().startswith(f"harness: error: {option} is for the local executor") and "\n" not in err.strip()


def test_the_in_process_executor_gives_back_the_threads_it_set():
    import torch

    from harness.grid.executors import make_executor

    before = torch.get_num_threads()
    runner = make_executor("local", 1, threads=before + 1)
    seen = []
    runner.run([], lambda cell, outcome: None)
    seen.append(torch.get_num_threads())
    runner.close()
    assert seen == [before + 1] and torch.get_num_threads() == before

"""The Ray executor against a local Ray instance that the test starts."""

from __future__ import annotations

import os

import pytest

from harness.grid import expand, run_grid
from harness.grid.spec import parse_spec
from harness.store.read import load_compute, load_metrics, run_folders

# One local Ray instance at a time: every Ray test runs on the same pytest-xdist worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

SPEC = """
name = "ray"
tasks = ["dart"]
methods = ["mle", "predistill", "seqkd"]
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


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_the_ray_executor_runs_each_cell_as_a_ray_task(ray_instance, tmp_path):
    cells = expand(parse_spec(SPEC, ".toml", "ray.toml").for_profile("ci"), str(tmp_path))
    lines: list[str] = []
    report = run_grid(cells, "ray", "ci", executor="ray", cpus=1, echo=lines.append)
    assert not report.failed and report.count("ran") == 3, "\n".join(lines)
    assert all(not o.worker.startswith(f"{os.getpid()}@") for o in report.outcomes.values())  # in Ray workers
    assert {p.name for p in run_folders(tmp_path)} == {c.run_id for c in cells}
    assert ray_instance.is_initialized()           # a connection the caller made is left open

    metrics = load_metrics(tmp_path)
    assert not metrics.duplicated(["run_id", "model", "metric"]).any()
    teacher = load_compute(tmp_path).query("stage == 'teacher'")
    assert (~teacher["reused"]).sum() == 1           # one cell built the teacher, the others reused it
    assert sorted(p.name for p in (tmp_path / "logs").glob("*.log")) == sorted(f"{c.run_id}.log" for c in cells)

    again = run_grid(cells, "ray", "ci", executor="ray", cpus=1, echo=lines.append)
    assert again.count("done") == 3 and again.count("ran") == 0

"""A grid's cells on several processes (``harness grid --processes N``; on Ray ``--gpus-per-cell N``): bad input is
one line before any work, the processes reach each cell's config, a Ray task splits its threads among them, and a
rank that dies is recorded as the cell's failure. (A real two-process grid cell: tests/test_data_parallel.py.)"""

from __future__ import annotations


import pytest
import torch

from conftest import cli_main, patch_everywhere
from harness.errors import HarnessError


def run_main(monkeypatch, capsys, args: list[str]) -> tuple[int, str]:
    """``harness *args`` in this process: (exit code, stderr)."""
    result = cli_main(monkeypatch, capsys, args)
    return result.code, result.err


@pytest.mark.parametrize("args, message", [
    (["--processes", "0"], "harness: error: Invalid value for '--processes': 0 is not in the range x>=1."),
    (["--executor", "ray", "--processes", "2"],
     "harness: error: --processes 2 is for the local executor; on Ray a cell's processes are its GPUs: "
     "--gpus-per-cell N starts N processes on one node, one per GPU"),
    (["--executor", "ray", "--gpus-per-cell", "1.5"],
     "harness: error: --gpus-per-cell 1.5: a cell on more than one GPU takes whole GPUs, one process each: give an "
     "integer (or at most 1, a share of one GPU)"),
    (["--processes", "2", "--workers", "2"],
     "harness: error: --processes 2 with --workers 2: a data-parallel grid runs its cells one after another, each "
     "on 2 processes; leave out --workers"),
])
def test_bad_processes_are_one_line_before_any_work(monkeypatch, capsys, tmp_path, args, message):
    code, err = run_main(monkeypatch, capsys, ["grid", "table2", "--profile", "ci", "--tasks", "dart",
                                               "--methods", "mle", "--results-dir", str(tmp_path / "r"), *args])
    assert code == 2 and err.strip().splitlines() == [message]
    assert not (tmp_path / "r").exists()


def test_more_cuda_processes_than_gpus_in_a_grid_is_one_line(monkeypatch, capsys, tmp_path):
    import harness.lm

    patch_everywhere(monkeypatch, harness.lm, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    code, err = run_main(monkeypatch, capsys, ["grid", "table2", "--profile", "ci", "--tasks", "dart",
                                               "--methods", "mle", "--results-dir", str(tmp_path / "r"),
                                               "--device", "cuda", "--processes", "2"])
    assert code == 2
    assert err.strip().splitlines() == ["harness: error: --processes 2 on CUDA, but this machine has 1 GPU(s): "
                                        "one process per GPU"]
    assert not (tmp_path / "r").exists()


def _cells(tmp_path, processes: int = 1):
    from harness.grid import expand, load_spec, with_overrides

    grid = with_overrides(load_spec("table2"), tasks="dart", methods="mle,tvd").for_profile("ci")
    return expand(grid, str(tmp_path), [], (), processes)


def test_the_processes_reach_every_cell_and_its_run_id(tmp_path):
    from harness.grid.executors import cell_processes

    one, two = _cells(tmp_path), _cells(tmp_path, 2)
    assert len(one) == len(two) > 1
    assert {c.config().processes for c in one} == {1} and {c.config().processes for c in two} == {2}
    assert {c.run_id for c in one}.isdisjoint(c.run_id for c in two)
    assert cell_processes("ray", None, 4, 1) == 4 and cell_processes("ray", None, 0.5, 1) == 1
    assert cell_processes("local", None, 0, 3) == 1 and cell_processes("local", 2, 0, 1) == 2
    with pytest.raises(HarnessError, match="'processes' cannot be set or swept here; use `harness grid --processes"):
        from harness.grid import expand, load_spec

        expand(load_spec("table2").for_profile("ci"), str(tmp_path), [("processes", "2")])


def test_a_ray_task_shares_its_threads_among_the_cells_processes(monkeypatch, tmp_path):
    from harness.grid import executors

    seen = {}
    monkeypatch.setattr(executors, "run_cell", lambda cell, wait, since, log_file: seen.update(
        cell=cell, log_file=log_file) or "outcome")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cell = _cells(tmp_path, 2)[0]
    threads = torch.get_num_threads()
    try:
        assert executors._ray_cell(cell, False, None, 8) == "outcome"
    finally:
        torch.set_num_threads(threads)
    assert seen == {"cell": cell, "log_file": True}
    import os

    assert os.environ.pop("OMP_NUM_THREADS") == "4"


def test_a_rank_that_dies_is_the_cells_failure(monkeypatch, tmp_path):
    import json

    from harness import distributed
    from harness.grid.cells import run_cell
    from harness.store.runs import failure_path

    cell = _cells(tmp_path, 2)[0]

    def dies(processes, entrypoint, *args):
        raise distributed.RankFailed(1, processes, 9)

    monkeypatch.setattr(distributed, "run_processes", dies)
    outcome = run_cell(cell)
    assert outcome.status == "failed"
    assert outcome.error == ("WorkerDied: training process 1 of 2 failed (exit code 9); the others were stopped; the "
                             "same command resumes from the last checkpoint")
    assert json.loads(failure_path(str(tmp_path), cell.run_id).read_text())["error_type"] == "WorkerDied"

    def fails_on_rank_0(processes, entrypoint, *args):   # rank 0 recorded the pipeline's own error first
        from harness.grid.cells import record_failure

        record_failure(cell, ValueError("nan loss"), "", 1.0, None)
        raise distributed.RankFailed(1, processes, 1)

    monkeypatch.setattr(distributed, "run_processes", fails_on_rank_0)
    outcome = run_cell(cell)
    assert outcome.status == "failed" and outcome.error == "ValueError: nan loss"


def test_a_process_group_that_cannot_start_is_one_line(monkeypatch):
    import socket

    from harness import distributed

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", "0")
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", str(taken.getsockname()[1]))
        with pytest.raises(HarnessError, match=r"^the process group of 2 processes could not start: .*address already "
                                               r"in use") as err:
            distributed.init_from_environment("cpu", init_timeout_s=1)
        assert "\n" not in str(err.value)
    monkeypatch.setenv("RANK", "1")      # no master at that port: given up after the start-up timeout
    with pytest.raises(HarnessError, match="the process group of 2 processes could not start: .*timed out"):
        distributed.init_from_environment("cpu", init_timeout_s=0.5)


def test_a_failed_rank_says_what_its_function_raised():
    from types import SimpleNamespace

    from harness import distributed

    failure = SimpleNamespace(error_file_data={"message": {"message": "ValueError: nan loss\nTraceback ...",
                                                           "extraInfo": {}}, "timestamp": 0})
    assert distributed._raised(failure) == "ValueError: nan loss"
    assert distributed._raised(SimpleNamespace(error_file_data={"message": ""})) == ""   # a program, or killed
    assert str(distributed.RankFailed(1, 2, 1, "ValueError: nan loss")) == (
        "training process 1 of 2 failed (exit code 1: ValueError: nan loss); the others were stopped; the same "
        "command resumes from the last checkpoint")

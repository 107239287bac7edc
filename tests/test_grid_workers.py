"""The local executor's worker processes: they end with their runner, however it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest


RUNNER = '''
import multiprocessing, sys, time

from harness.grid.executors import _exit_with_parent


def worker():
    _exit_with_parent()
    time.sleep(120)


if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=worker, daemon=True)
    child.start()
    print(child.pid, flush=True)
    time.sleep(120)
'''


def _gone(pid: int) -> bool:
    try:
        state = next(line for line in open(f"/proc/{pid}/status") if line.startswith("State:"))
    except FileNotFoundError:
        return True
    return "Z" in state.split()[1]   # a zombie no one reaps has ended all the same


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_a_grid_worker_ends_when_its_runner_is_killed(tmp_path):
    """SIGKILL of the runner runs no clean-up: its spawned workers must notice and end, not train on unseen."""
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    runner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(runner.stdout.readline())
    assert not _gone(child)
    runner.kill()
    runner.wait()
    deadline = time.time() + 30
    while not _gone(child) and time.time() < deadline:
        time.sleep(0.05)
    assert _gone(child)


def test_a_free_worker_takes_a_cell_of_an_upstream_group_no_other_worker_is_on(tmp_path):
    """Two tasks' cells, two teachers per task: a worker never joins another worker's group (whose teacher that
    worker may be building) while a cell of a free group is left, and takes the first cell once none is."""
    from harness.grid import expand, load_spec, with_overrides
    from harness.grid.executors import next_cell, upstream_group
    from harness.grid.spec import interleave_tasks

    spec = with_overrides(load_spec("table2_teachers"), tasks="dart,xsum", methods="mle,kl").for_profile("ci")
    cells = interleave_tasks(expand(spec, str(tmp_path)))
    group = upstream_group
    assert len({group(c) for c in cells}) == 2 * len(spec.axes["upstream_seed"])   # per task, one per teacher

    other = None   # the cell the other worker is on
    todo = list(cells)
    while todo:
        cell = todo.pop(next_cell(todo, [other] if other else []))
        if other is not None and group(cell) == group(other):
            assert all(group(c) == group(other) for c in todo)
        other = cell

    # The case met in a chunk of the evidence grid: the cells left in order are of the group whose teacher the
    # other worker is building, then those of another group.
    first = [c for c in cells if group(c) == group(cells[0])]
    rest = [c for c in cells if group(c) != group(cells[0])]
    assert next_cell(first[1:] + rest, first[:1]) == len(first) - 1
    assert next_cell(first[1:], first[:1]) == 0            # one group left: the first cell
    assert next_cell(cells[1:], []) == 0                 # no worker busy: the order stands

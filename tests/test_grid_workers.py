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

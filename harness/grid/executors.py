"""Where the cells of a grid run.

* :class:`SequentialExecutor` — one after the other in this process (the default);
* :class:`ProcessExecutor` — N worker processes on this machine (``--workers N``); a
  worker that dies (killed, out of memory) has its cell recorded as failed and is replaced;
* :class:`RayExecutor` — each cell a Ray task with its CPU/GPU needs, on an existing
  Ray cluster (``--address``) or a local instance; the results directory must be on a
  file system every node sees, with working ``flock`` locks.

A data-parallel cell (``--processes N``; on Ray ``--gpus-per-cell N``) is run by :func:`run_cell` in N local
processes that it starts (:func:`harness.grid.cells.rank_cell`); the local executor then runs one cell at a time.

Every executor runs :func:`harness.grid.cells.run_cell`; cells another runner holds
come back ``busy`` and are waited for after everything else (:meth:`Executor.run`).
Workers write each cell's log to ``results/logs/<run_id>.log``.
"""

from __future__ import annotations

import os
import queue
import sys
import time
from typing import Callable

from .cells import CellOutcome, lost_cell, run_cell
from .spec import Cell

Report = Callable[[Cell, CellOutcome], None]
# Settings of this process that cells on other Ray nodes need too (offline hub, caches).
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_DATASETS_CACHE",
                 "TOKENIZERS_PARALLELISM", "HARNESS_NO_MALLOPT")


class Executor:
    """Runs cells; subclasses implement one pass (:meth:`_pass`), which returns the cells found busy."""

    name = "executor"

    def run(self, cells: list[Cell], report: Report) -> None:
        started = time.time()
        busy = self._pass(cells, False, None, report)
        if busy:
            print(f"[grid] {len(busy)} cell(s) are being run by another runner: waiting for them",
                  file=sys.stderr, flush=True)
            for cell in self._pass(busy, True, started, report):   # cannot be busy while we wait
                report(cell, CellOutcome(cell.run_id, "busy"))

    def _pass(self, cells: list[Cell], wait: bool, failed_since: float | None, report: Report) -> list[Cell]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SequentialExecutor(Executor):
    name = "local"

    def __init__(self, threads: int | None = None):
        self.threads, self.threads_before = threads, None

    def run(self, cells: list[Cell], report: Report) -> None:
        if self.threads is not None:   # this process's threads for the grid's cells, given back in close()
            import torch

            self.threads_before = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        super().run(cells, report)

    def close(self) -> None:
        if self.threads_before is not None:
            import torch

            torch.set_num_threads(self.threads_before)

    def _pass(self, cells, wait, failed_since, report):
        busy = []
        for cell in cells:
            outcome = run_cell(cell, wait, failed_since)
            if outcome.status == "busy":
                busy.append(cell)
            else:
                report(cell, outcome)
        return busy


def _exit_with_parent() -> None:
    """End this worker the moment its runner process ends, however it ended. A runner killed by a signal runs no
    clean-up, and its workers went on training their cells, holding their locks, with no one to hand them the next:
    CPU spent on work a rerun would redo. The cell in hand keeps its last checkpoint (stages resume from it)."""
    import multiprocessing
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="harness-grid-runner-watch", daemon=True).start()


def _worker_main(worker_id: int, tasks, results, threads: int, gpu: str | None) -> None:
    """A worker process: run the cells it is handed until it gets None, or until its runner is gone."""
    _exit_with_parent()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    import torch

    from .._runtime import tune_allocator

    tune_allocator()
    torch.set_num_threads(threads)
    while (item := tasks.get()) is not None:
        cell, wait, failed_since = item
        results.put((worker_id, run_cell(cell, wait, failed_since, log_file=True)))


class ProcessExecutor(Executor):
    """``workers`` processes (spawned, each with its share of the CPU threads and a GPU if there are any)."""

    name = "local"

    def __init__(self, workers: int, threads: int | None = None):
        if workers < 1:
            raise ValueError("--workers must be at least 1")
        self.workers, self.threads = workers, threads

    def _pass(self, cells, wait, failed_since, report):
        import multiprocessing

        import torch

        ctx = multiprocessing.get_context("spawn")
        n = min(self.workers, len(cells))
        threads = self.threads if self.threads is not None else max(1, (os.cpu_count() or 1) // n)
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        results = ctx.Queue()
        procs, inboxes, in_flight = {}, {}, {}

        def start(i: int) -> None:
            inboxes[i] = ctx.Queue()
            procs[i] = ctx.Process(target=_worker_main, daemon=True, name=f"harness-grid-worker-{i}",
                                   args=(i, inboxes[i], results, threads, str(i % gpus) if gpus else None))
            procs[i].start()

        def hand(i: int) -> None:
            if todo:
                in_flight[i] = todo.pop(next_cell(todo, in_flight.values()))
                inboxes[i].put((in_flight[i], wait, failed_since))

        todo, busy = list(cells), []
        try:
            for i in range(n):
                start(i)
                hand(i)
            while in_flight:
                try:
                    i, outcome = results.get(timeout=1.0)
                except queue.Empty:
                    for i, proc in list(procs.items()):
                        if i in in_flight and not proc.is_alive():
                            cell = in_flight.pop(i)
                            report(cell, lost_cell(cell, f"its worker process ended with exit code {proc.exitcode}"
                                                         f"{' (killed: out of memory?)' if proc.exitcode == -9 else ''}"))
                            if todo:
                                start(i)
                                hand(i)
                    continue
                cell = in_flight.pop(i)
                if outcome.status == "busy":
                    busy.append(cell)
                else:
                    report(cell, outcome)
                hand(i)
        finally:
            for i, proc in procs.items():
                if proc.is_alive():
                    inboxes[i].put(None)
            for proc in procs.values():
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.terminate()
        return busy


def upstream_group(cell: Cell) -> tuple:
    """What decides the upstream stages (tokenizer, teacher, pseudo-labels, pre-distilled student) a cell shares
    with others: its task, profile, axis values and ``--set`` pairs; not its method or seed. Cells that differ in an
    axis that does not reach the teacher land in different groups: the choice below then gains nothing, never
    loses."""
    return cell.task, cell.profile, cell.axes, cell.sets


def next_cell(todo: list[Cell], in_flight) -> int:
    """The index in ``todo`` of the cell a free worker takes: the first whose upstream group no other worker is
    on, else the first. A worker handed a cell of another worker's group while that worker builds the group's
    teacher would wait on the teacher's lock (a teacher is minutes to tens of minutes on CPU) while cells of other
    groups, and their own teachers, could run; once every group's upstream stages exist the choice only changes
    the order."""
    taken = {upstream_group(cell) for cell in in_flight}
    return next((j for j, cell in enumerate(todo) if upstream_group(cell) not in taken), 0)


def _ray_cell(cell: Cell, wait: bool, failed_since: float | None, threads: int) -> CellOutcome:
    """A cell as a Ray task (runs on a Ray worker). A data-parallel cell (``processes`` > 1, from
    ``--gpus-per-cell``) starts its processes here, on the task's node and GPUs (Ray's ``CUDA_VISIBLE_DEVICES``,
    which they inherit), each with its share of the task's CPU threads."""
    import torch

    from .._runtime import tune_allocator

    tune_allocator()
    torch.set_num_threads(max(1, threads))
    processes = cell.config().processes
    if processes > 1:
        os.environ["OMP_NUM_THREADS"] = str(max(1, threads // processes))
    return run_cell(cell, wait, failed_since, log_file=True)


class RayExecutor(Executor):
    """Each cell a Ray task asking for ``cpus`` CPUs and ``gpus`` GPUs; no retries (a failure is recorded).

    A cell on N > 1 GPUs (``--gpus-per-cell N``) is one task that reserves N GPUs, which Ray places on one node,
    and starts the cell's N processes there with torch's launcher (:func:`harness.distributed.run_processes`, as
    ``harness run --processes N`` and the local executor do). Not Ray Train: its ``TorchTrainer`` places workers
    as actors, possibly across nodes, and runs a training-loop function with its own checkpoints and reports,
    whereas a cell is a whole pipeline (stages cached and locked in the shared results folder, rank 0 writing,
    resumable from the harness's own checkpoints) whose ranks only need one node's GPUs (NCCL within the node)
    and the same launcher as a cell run anywhere else: one code path, the same numbers.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus: float = 1, gpus: float = 0):
        try:
            import ray
        except ImportError:
            from ..errors import HarnessError

            raise HarnessError("--executor ray needs Ray: pip install 'fdistill-harness[ray]'") from None
        self.ray = ray
        self.cpus, self.gpus = cpus, gpus
        self.owns_connection = not ray.is_initialized()
        if self.owns_connection:
            env = {k: v for k, v in os.environ.items() if k in FORWARDED_ENV}
            local = address is None and not os.environ.get("RAY_ADDRESS")
            ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": env} if env else None,
                     **({"include_dashboard": False} if local else {}))

    def _pass(self, cells, wait, failed_since, report):
        ray = self.ray
        task = ray.remote(_ray_cell)
        pending = {task.options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0,
                                name=f"cell {cell.run_id}").remote(cell, wait, failed_since, int(self.cpus)): cell
                   for cell in cells}
        busy = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                cell = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as err:   # the task's process died, or Ray lost it
                    outcome = lost_cell(cell, f"its Ray task ended: {type(err).__name__}: "
                                              f"{str(err).strip().splitlines()[0][:300] if str(err).strip() else ''}")
                if outcome.status == "busy":
                    busy.append(cell)
                else:
                    report(cell, outcome)
        return busy

    def close(self) -> None:
        if self.owns_connection:
            self.ray.shutdown()


def make_executor(kind: str, workers: int = 1, address: str | None = None, cpus: float = 1,
                  gpus: float = 0, threads: int | None = None) -> Executor:
    """``threads``: torch CPU threads per local cell (None: this process's, or the cores shared among the
    workers); a Ray cell takes as many as the CPUs it asks for."""
    check_local_options(kind, workers, threads)
    if kind == "ray":
        return RayExecutor(address, cpus, gpus)
    if kind == "local":
        return SequentialExecutor(threads) if workers <= 1 else ProcessExecutor(workers, threads)
    from ..errors import HarnessError

    raise HarnessError(f"unknown executor {kind!r}; known: local, ray")


def cell_processes(kind: str, processes: int | None, gpus: float, workers: int = 1) -> int:
    """The data-parallel processes of each cell: ``--processes`` (local; 1 by default) or, on Ray, the GPUs of a
    cell when it takes more than one (one process per GPU). Raises :class:`~harness.errors.HarnessError` (one
    line, before any work) for ``--processes`` beside Ray's placement, a fraction of GPUs above one, and
    ``--processes`` above one beside ``--workers``."""
    from ..errors import HarnessError

    if kind == "ray":
        if processes is not None:
            raise HarnessError(f"--processes {processes} is for the local executor; on Ray a cell's processes are "
                               f"its GPUs: --gpus-per-cell N starts N processes on one node, one per GPU")
        if gpus > 1 and gpus != int(gpus):
            raise HarnessError(f"--gpus-per-cell {gpus:g}: a cell on more than one GPU takes whole GPUs, one process "
                               f"each: give an integer (or at most 1, a share of one GPU)")
        return int(gpus) if gpus > 1 else 1
    processes = 1 if processes is None else processes
    if processes < 1:
        raise HarnessError(f"--processes {processes}: must be at least 1")
    if processes > 1 and workers > 1:
        raise HarnessError(f"--processes {processes} with --workers {workers}: a data-parallel grid runs its cells "
                           f"one after another, each on {processes} processes; leave out --workers")
    return processes


def check_local_options(kind: str, workers: int = 1, threads: int | None = None) -> None:
    """``workers`` and ``threads`` are for the local executors; Ray runs as many cells at once as its cluster's
    CPUs allow, and a Ray cell's threads are its CPUs."""
    from ..errors import HarnessError

    if kind == "ray" and workers != 1:
        raise HarnessError("--workers is for the local executor; Ray runs as many cells at once as the cluster's "
                           "CPUs allow (--cpus-per-cell each)")
    if kind == "ray" and threads is not None:
        raise HarnessError("--threads is for the local executor; a Ray cell takes as many threads as its "
                           "--cpus-per-cell")

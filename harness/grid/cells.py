"""Running one grid cell safely: a cell lock, failure records, no duplicate work.

:func:`run_cell` is what every executor calls, in whatever process runs the cell:

* a cell whose run folder exists is done — it is not run again;
* ``results/locks/<run_id>.lock`` is held while the cell runs, so two runners (or
  workers) never run the same cell at once; a runner that finds it held moves on
  (status ``busy``) and comes back to wait for it at the end;
* an exception (a NaN loss, out of memory, a bug) is recorded in
  ``results/failed/<run_id>.json`` with its traceback and the config, and the cell's
  status is ``failed``; the record is removed when the cell later succeeds;
* a full disk is *fatal*: the runner stops the grid with one clear error (what was
  written before is complete, nothing is half-written; the same command finishes it).
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from ..store.runs import clear_failure, failure_path, is_complete, run_path, stale_stages, verify_run, write_failure
from .spec import Cell

LOCKS, LOGS = "locks", "logs"


@dataclass
class CellOutcome:
    run_id: str
    status: str                     # ran | done | failed | busy
    seconds: float = 0.0
    error: str = ""                 # "Type: message" of a failure
    record: str = ""                # the failure record's path
    built: tuple[str, ...] = ()     # stage labels built by this cell now
    reused: tuple[str, ...] = ()
    resumed: tuple[str, ...] = ()   # stages that went on from a training checkpoint
    worker: str = ""                # pid@host that ran it
    fatal: str | None = None        # why the grid cannot go on (disk full): the runner stops with it


def _worker() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def done_problem(cell: Cell) -> str | None:
    """None if the cell's run folder is complete, intact and made by the stages the cell's plan has now;
    else why it is not done ("is missing", "is corrupted: …", "is stale: …")."""
    import json

    if not is_complete(cell.results_dir, cell.run_id):
        return "is missing"
    folder = run_path(cell.results_dir, cell.run_id)
    problem = verify_run(folder)
    if problem is not None:
        return f"is corrupted: {problem}"
    from ..pipeline.graph import plan_for

    stale = stale_stages(json.loads((folder / "manifest.json").read_text()), plan_for(cell.config()).keys())
    if stale:
        return f"is stale: made by other code or inputs in {', '.join(stale)}"
    return None


def cell_lock_path(cell: Cell) -> Path:
    return Path(cell.results_dir) / LOCKS / f"{cell.run_id}.lock"


def run_cell(cell: Cell, wait: bool = False, failed_since: float | None = None,
             log_file: bool = False) -> CellOutcome:
    """Run ``cell`` unless it is done or another process holds it.

    ``wait``: wait for the cell's lock instead of answering ``busy``; once it is ours the
    cell is done (someone finished it), failed since ``failed_since`` (someone tried, it
    failed: not tried again now), or still to run. ``log_file``: while it runs, send
    this process's output to ``results/logs/<run_id>.log`` (worker processes).
    """
    from filelock import FileLock, Timeout

    if done_problem(cell) is None:
        return CellOutcome(cell.run_id, "done")
    path = cell_lock_path(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        return CellOutcome(cell.run_id, "busy")
    try:
        if is_complete(cell.results_dir, cell.run_id):
            problem = done_problem(cell)
            if problem is None:
                return CellOutcome(cell.run_id, "done")
            _log(f"[grid] run {cell.run_id} {problem}: running its cell again")
            shutil.rmtree(run_path(cell.results_dir, cell.run_id))
        record = failure_path(cell.results_dir, cell.run_id)
        if failed_since is not None and record.is_file() and record.stat().st_mtime >= failed_since:
            import json

            failure = json.loads(record.read_text())
            return CellOutcome(cell.run_id, "failed", error=f"{failure['error_type']}: {failure['error']}",
                               record=str(record), worker=failure.get("worker", ""))
        processes = _cell_processes(cell)
        if processes > 1:
            return _run_parallel(cell, processes, log_file)
        if not log_file:
            return _run(cell)
        with cell_log(cell):
            return _run(cell)
    finally:
        lock.release()


def _cell_processes(cell: Cell) -> int:
    """How many processes run ``cell``; 1 when its config does not resolve (its plugins loaded first: their methods
    are unknown before), so that :func:`_run` records the error as the cell's failure."""
    from ..registry import load_plugin_file

    try:
        for plugin in cell.plugins:
            load_plugin_file(plugin)
        return cell.config().processes
    except Exception:
        return 1


def _run_parallel(cell: Cell, processes: int, log_file: bool) -> CellOutcome:
    """A data-parallel cell (``processes`` > 1): this process holds the cell's lock and starts ``processes`` local
    processes that run it together (:func:`harness.distributed.run_processes`, as ``harness run --processes N``);
    rank 0 writes the run and records a failure of the pipeline. A rank that dies is recorded here."""
    from .. import distributed

    start = time.time()
    try:
        outcomes = distributed.run_processes(processes, rank_cell, cell, log_file)
    except distributed.RankFailed as err:
        record = failure_path(cell.results_dir, cell.run_id)
        if record.is_file() and record.stat().st_mtime >= start:   # rank 0 recorded what went wrong
            import json

            failure = json.loads(record.read_text())
            return CellOutcome(cell.run_id, "failed", time.time() - start,
                               f"{failure['error_type']}: {failure['error']}", str(record), worker=_worker())
        return lost_cell(cell, str(err))
    return outcomes[0]


def rank_cell(cell: Cell, log_file: bool) -> CellOutcome:
    """One rank of a data-parallel cell (in a process :func:`_run_parallel` started): join the group, run the
    cell; rank 0's outcome is the cell's."""
    from .. import distributed
    from .._runtime import tune_allocator
    from ..lm import resolve_device

    tune_allocator()
    distributed.init_from_environment(resolve_device(cell.config().device))
    try:
        if log_file:
            with cell_log(cell):
                return _run(cell)
        return _run(cell)
    finally:
        distributed.shutdown()


@contextlib.contextmanager
def cell_log(cell: Cell):
    """Send this process's Python-level output to the cell's log file while it runs."""
    path = Path(cell.results_dir) / LOGS / f"{cell.run_id}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {_worker()}: {cell.label()}", flush=True)
        yield


def _run(cell: Cell) -> CellOutcome:
    from ..errors import DiskFullError, HarnessError
    from ..registry import load_plugin_file

    start, cfg = time.time(), None
    try:
        for plugin in cell.plugins:
            load_plugin_file(plugin)
        cfg = cell.config()
        from ..pipeline.graph import run_id

        if run_id(cfg) != cell.run_id:
            raise HarnessError(f"this process resolves the cell to run id {run_id(cfg)}, not {cell.run_id}: "
                               f"its harness code, plugins or data differ from the runner's")
        from ..pipeline import Pipeline

        outcome = Pipeline(cfg, cell.report_to).run()
    except DiskFullError as err:   # every other cell would fail the same way: stop the grid
        _release_memory()
        return CellOutcome(cell.run_id, "failed", time.time() - start, f"{type(err).__name__}: {_first_line(err)}",
                           worker=_worker(), fatal=_first_line(err))
    except Exception as err:   # isolate the cell: record it, free its memory, let the grid go on
        from .. import distributed

        if distributed.world_size() > 1 and (not distributed.is_writer() or distributed.is_peer_failure(err)):
            raise    # data parallel: rank 0 records; a rank whose peer died leaves the story to the launcher
        path = record_failure(cell, err, traceback.format_exc(), time.time() - start,
                              asdict(cfg) if cfg is not None else None)
        _release_memory()
        _log(f"[grid] cell {cell.run_id} failed: {type(err).__name__}: {_first_line(err)} (record: {path})")
        return CellOutcome(cell.run_id, "failed", time.time() - start, f"{type(err).__name__}: {_first_line(err)}",
                           str(path), worker=_worker())
    if outcome is None:    # a data-parallel rank other than 0: rank 0 wrote the run and says what it built
        return CellOutcome(cell.run_id, "ran", time.time() - start, worker=_worker())
    clear_failure(cell.results_dir, cell.run_id)
    _release_memory()
    stages = outcome.manifest["stages"]
    return CellOutcome(
        cell.run_id, "ran", time.time() - start,
        built=tuple(label for label, s in stages.items() if not s["reused"]),
        reused=tuple(label for label, s in stages.items() if s["reused"]),
        resumed=tuple(label for label, s in stages.items()
                      if not s["reused"] and s.get("resumed_from_step") is not None),
        worker=_worker())


def record_failure(cell: Cell, err: BaseException | None, trace: str, seconds: float, config: dict | None,
                   error_type: str | None = None, message: str | None = None) -> Path:
    return write_failure(cell.results_dir, cell.run_id, _failure(
        {"task": cell.task, "method": cell.method, "seed": cell.seed, "profile": cell.profile,
         "axes": {k: v for k, v in cell.axes}}, err, trace, seconds, config, error_type, message))


def _failure(cell: dict, err: BaseException | None, trace: str, seconds: float, config: dict | None,
             error_type: str | None = None, message: str | None = None) -> dict:
    details = {k: getattr(err, k) for k in ("step", "what", "values") if err is not None and hasattr(err, k)}
    return {**cell, "error_type": error_type or type(err).__name__,
            "error": message if message is not None else str(err), "details": details, "traceback": trace,
            "seconds": round(seconds, 3), "config": config, "worker": _worker()}


def run_and_record(cfg, report_to: tuple[str, ...] = ()):
    """``harness run``'s one cell, failing as a grid cell does: an exception in the pipeline (a NaN loss, out of
    memory, a bug) is recorded in ``RESULTS/failed/<run_id>.json`` with its traceback and raised as one
    :class:`RunFailed` line (exit 1); a user error (:class:`HarnessError`) is raised as it is. Success removes an
    earlier failure record of the run. ``report_to``: the run's trackers (:mod:`harness.tracking`)."""
    from ..errors import HarnessError, RunFailed
    from ..pipeline import Pipeline
    from ..pipeline.graph import run_id

    from .. import distributed

    start = time.time()
    try:
        outcome = Pipeline(cfg, report_to).run()
    except HarnessError:
        raise
    except Exception as err:
        if not distributed.is_writer() or distributed.is_peer_failure(err):
            raise    # data parallel: rank 0 records; a rank whose peer died leaves the story to the launcher
        rid = run_id(cfg)
        path = write_failure(cfg.results_dir, rid, _failure(
            {"task": cfg.task, "method": cfg.method, "seed": cfg.seed, "profile": cfg.profile, "axes": {}},
            err, traceback.format_exc(), time.time() - start, asdict(cfg)))
        raise RunFailed(f"run {rid} failed: {type(err).__name__}: {_first_line(err)} (traceback: {path})") from None
    if outcome is not None:   # None: a data-parallel rank other than 0 (rank 0 wrote the run)
        clear_failure(cfg.results_dir, outcome.run_id)
    return outcome


def lost_cell(cell: Cell, reason: str) -> CellOutcome:
    """A cell whose process died (killed, out of host memory) before it could record anything."""
    path = record_failure(cell, None, "", 0.0, None, error_type="WorkerDied", message=reason)
    _log(f"[grid] cell {cell.run_id} failed: {reason} (record: {path})")
    return CellOutcome(cell.run_id, "failed", error=f"WorkerDied: {reason}", record=str(path))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else ""


def _release_memory() -> None:
    gc.collect()
    # What survives a full collection between cells (modules, registries, caches) lives as long as the process:
    # frozen, it is no longer walked by every later collection (a full one over torch's and transformers' objects
    # took ~0.3 s a cell). Objects freed later by reference counting are still freed.
    gc.freeze()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass

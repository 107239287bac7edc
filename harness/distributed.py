"""The process group of a cell that trains data-parallel: which process this is, how many there are, and the
few collectives the training step needs (torch.distributed: gloo on CPU, NCCL on CUDA).

A cell trains on N processes when it is launched so (``torchrun --nproc-per-node N``, ``accelerate launch``,
``harness run --processes N``): each process runs the whole cell, every rank takes its shard of each global
batch and the gradients are summed over the ranks (:func:`harness.step.accumulate.parallel_step`); decoding
(validation, pseudo-labels, evaluation) is split over the ranks by batches and gathered
(:func:`harness.evaluate.decode`). In one process (no launcher
environment, no process group) every helper here is a no-op that returns its input unchanged, so a
one-process run computes exactly what it computed before this module existed.

Why not ``DistributedDataParallel``: the engine calls a model's encoder and decoder separately (DDP's hooks
run on ``forward`` only), a step's loss is normalised by the token counts of the *global* batch (so the
gradients are summed, not averaged) and a step may backpropagate several micro-batches; one all-reduce of the
summed gradients per optimizer step does what DDP would, with those semantics.
"""

from __future__ import annotations

import datetime
import logging
import os

import torch

from ._runtime import launched_processes

#: The environment a launcher (torchrun, accelerate launch, ``harness run --processes``) sets for each process.
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def world_size() -> int:
    """How many processes train this cell (1 without a process group)."""
    dist = _dist()
    return dist.get_world_size() if dist is not None else 1


def rank() -> int:
    """This process's index among them (0 without a process group)."""
    dist = _dist()
    return dist.get_rank() if dist is not None else 0


def is_writer() -> bool:
    """Whether this process writes what the cell makes (stages, checkpoints, the run): rank 0."""
    return rank() == 0


def rank_seed(seed: int, rank: int) -> int:
    """The torch seed of rank ``rank`` (dropout, online samples): rank 0 keeps ``seed`` (what one process
    draws), the others draw from streams of their own."""
    return seed + 1_000_003 * rank


def backend_for(device: torch.device | str) -> str:
    """gloo for CPU processes, NCCL for CUDA ones."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


#: How long a rank waits for the others at a collective: rank 0 alone builds the stages that neither train nor
#: decode (the tokenizer, the teacher-output store) while the others wait at a barrier.
TIMEOUT_S = 6 * 3600.0
#: How long a rank waits to reach the others when the group starts (``HARNESS_INIT_TIMEOUT_S``): a master that
#: never comes (a port in use, a wrong address) is then one line after minutes, not after :data:`TIMEOUT_S`.
INIT_TIMEOUT_S = 300.0


def init_from_environment(device: torch.device | str = "cpu", timeout_s: float = TIMEOUT_S,
                          init_timeout_s: float | None = None) -> bool:
    """Join the process group a launcher described in the environment (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``); True when this process is one of several. Nothing happens when the
    environment names one process or the group is already up. A group that cannot start (the master's port in
    use, no master within ``init_timeout_s``, default ``HARNESS_INIT_TIMEOUT_S`` or :data:`INIT_TIMEOUT_S`)
    raises :class:`~harness.errors.HarnessError` (one line)."""
    from .errors import HarnessError

    if _dist() is not None:
        return world_size() > 1
    if launched_processes() <= 1:
        return False
    import torch.distributed as dist

    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise HarnessError(f"WORLD_SIZE={launched_processes()} but {', '.join(missing)} not set: launch the "
                           f"processes with `harness run --processes N`, torchrun or accelerate launch")
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if init_timeout_s is None:
        init_timeout_s = float(os.environ.get("HARNESS_INIT_TIMEOUT_S", INIT_TIMEOUT_S))
    try:   # the rendezvous under the short timeout, then the collectives' own
        store, rank, size = next(dist.rendezvous("env://", timeout=datetime.timedelta(seconds=init_timeout_s)))
        store.set_timeout(datetime.timedelta(seconds=timeout_s))
        dist.init_process_group(backend_for(device), store=store, rank=rank, world_size=size,
                                timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as e:
        raise HarnessError(f"the process group of {launched_processes()} processes could not start: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return True


def check_processes(processes: int | None, device: torch.device | str) -> int:
    """The number of processes a cell trains on: ``--processes`` (None: what a launcher set, else 1). Raises
    :class:`~harness.errors.HarnessError` (one line, before any work) for more CUDA processes than GPUs and for
    a ``--processes`` that contradicts the launcher's ``WORLD_SIZE``."""
    from .errors import HarnessError

    launched = launched_processes()
    if processes is None:
        return launched
    if processes < 1:
        raise HarnessError(f"--processes {processes}: must be at least 1")
    if launched > 1 and processes != launched:
        raise HarnessError(f"--processes {processes} but the launcher started {launched} processes "
                           f"(WORLD_SIZE): give one or the other")
    device = torch.device(device)
    if device.type == "cuda" and device.index is not None and processes > 1:
        raise HarnessError(f"--processes {processes} with --device {device}: give --device cuda, each process "
                           f"takes the GPU of its local rank")
    if device.type == "cuda" and processes > torch.cuda.device_count():
        raise HarnessError(f"--processes {processes} on CUDA, but this machine has {torch.cuda.device_count()} "
                           f"GPU(s): one process per GPU")
    if device.type not in ("cpu", "cuda") and processes > 1:
        raise HarnessError(f"--processes {processes} on {device.type}: data parallel runs on cpu (gloo) or cuda "
                           f"(NCCL)")
    return processes


class RankFailed(RuntimeError):
    """A process of a launched group failed (:func:`run_processes`); the launcher stopped the others. ``error``:
    the exception a function entrypoint raised there ("Type: message"), when the launcher recorded one."""

    def __init__(self, rank: int, processes: int, exitcode: int, error: str = ""):
        self.rank, self.processes, self.exitcode, self.error = rank, processes, exitcode, error
        super().__init__(f"training process {rank} of {processes} failed (exit code {exitcode}"
                         f"{': ' + error if error else ''}); the others were stopped; the same command resumes from "
                         f"the last checkpoint")


def _raised(failure) -> str:
    """The first line of the exception a launched function raised ("" for a program, or a process killed)."""
    data = getattr(failure, "error_file_data", None) or {}
    message = data.get("message") if isinstance(data, dict) else None
    text = message.get("message", "") if isinstance(message, dict) else ""
    return text.strip().splitlines()[0][:300] if isinstance(text, str) and text.strip() else ""


def run_processes(processes: int, entrypoint, *args) -> dict:
    """Run ``entrypoint(*args)`` in ``processes`` local processes that form one process group (torch's elastic
    launcher, as ``torchrun --standalone``; ``entrypoint``: a module-level function, or a program such as
    ``sys.executable`` whose arguments are ``args``); each finds its rank in its environment. Returns each rank's
    return value (a function's), by rank. Raises :class:`RankFailed` for the first rank that failed, after the
    launcher stopped the others (no restarts: the same command resumes from the last checkpoint), and
    :class:`~harness.errors.HarnessError` (one line) when the launcher cannot start the group."""
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from .errors import HarnessError

    # torch threads per rank: the cores shared among them (without it Accelerate sets one thread, with a warning)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)   # the failure is said once
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, start_method="spawn")
    try:
        return elastic_launch(config, entrypoint)(*args) or {}
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        raise RankFailed(rank, processes, failure.exitcode if failure.exitcode and failure.exitcode > 0 else 1,
                         _raised(failure) if callable(entrypoint) else "") from None
    except (RuntimeError, ValueError, OSError) as err:   # the launcher's rendezvous: no group to run in
        raise HarnessError(f"the process group of {processes} processes could not start: "
                           f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def launch(processes: int, argv: list[str]) -> int:
    """Run ``python -m harness.cli *argv`` in ``processes`` local processes that form one process group
    (:func:`run_processes`). Returns the exit status: 0, or that of the first rank that failed, said in one line
    (the launcher stopped the others)."""
    import sys

    try:
        run_processes(processes, sys.executable, "-m", "harness.cli", *argv)
    except RankFailed as err:
        print(f"harness: error: {err}", file=sys.stderr)
        return err.exitcode
    return 0


def is_peer_failure(err: BaseException) -> bool:
    """Whether ``err`` is a collective that broke because another process of the group died: that process's
    failure is the story, which the launcher tells in one line (:func:`launch`)."""
    import torch.distributed as dist

    if isinstance(err, getattr(dist, "DistError", ())) and not isinstance(err, getattr(dist, "DistStoreError", ())):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("Connection reset by peer" in text or "Connection closed by peer" in text
                                              or "gloo/transport" in text)


def shutdown() -> None:
    """Leave the process group (if this process is in one)."""
    dist = _dist()
    if dist is not None:
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process gets here (no-op in one process)."""
    dist = _dist()
    if dist is not None and dist.get_world_size() > 1:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over the processes, in place (returned as is in one process)."""
    dist = _dist()
    if dist is not None and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_float(value: float) -> float:
    """Rank 0's ``value`` on every process (``value`` itself in one process)."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def gather_objects(value) -> list:
    """Every process's ``value`` (picklable), in rank order, on every process (``[value]`` in one process)."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return [value]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def _collective_device() -> torch.device:
    """Where the backend's tensors must live: the process's GPU under NCCL, else the CPU."""
    dist = _dist()
    if dist is not None and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_floats(values: dict[str, float], device: torch.device | str = "cpu") -> dict[str, float]:
    """Each value summed over the processes (float64, exact for token counts); the same dict in one process.
    Every process must pass the same keys in the same order."""
    if world_size() == 1:
        return values
    keys = list(values)
    summed = all_reduce_sum(torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device))
    return {k: float(v) for k, v in zip(keys, summed.tolist())}


def all_reduce_gradients(parameters) -> None:
    """Sum the gradients of ``parameters`` over the processes, in place, one flat buffer per dtype.

    A parameter that got no gradient on some process (its rows did not reach it) takes zeros there; one that
    got none on *any* process keeps ``grad is None`` everywhere, as it would in one process (the optimizer
    skips it)."""
    if world_size() == 1:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    device = params[0].device
    present = all_reduce_sum(torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device))
    reduced = [p for p, n in zip(params, present.tolist()) if n > 0]
    for p in reduced:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for p in reduced:
        by_dtype.setdefault(p.grad.dtype, []).append(p)
    for group in by_dtype.values():
        flat = all_reduce_sum(torch.cat([p.grad.reshape(-1) for p in group]))
        offset = 0
        for p in group:
            n = p.grad.numel()
            p.grad.copy_(flat[offset: offset + n].view_as(p.grad))
            offset += n


def parameters_checksum(parameters) -> float:
    """A cheap fingerprint of the weights (float64 sum of each parameter's sum); equal on every process while
    they stay in sync."""
    return float(sum(p.detach().double().sum() for p in parameters))


def check_in_sync(parameters, where: str) -> None:
    """Raise when the processes' weights differ (they stay equal because the summed gradients are)."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    params = list(parameters)
    mine = torch.tensor([parameters_checksum(params)], dtype=torch.float64, device=params[0].device)
    gathered = [torch.zeros_like(mine) for _ in range(world_size())]
    dist.all_gather(gathered, mine)
    values = [float(g) for g in gathered]
    if max(values) - min(values) > 1e-9 * max(1.0, abs(values[0])):
        raise RuntimeError(f"{where}: the processes' weights differ (checksums {values})")

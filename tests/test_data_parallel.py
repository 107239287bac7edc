"""Data-parallel training: two gloo processes on CPU, each with its shard of every global batch, take the step
of one process on the whole batch — the same loss, terms and gradients (1e-5) for every registered method and
variant — and in one process the helpers change nothing."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from harness import distributed
from harness.data import make_batch, shard_rows
from harness.step import method_loss
from harness.step.accumulate import parallel_step
from harness.testing import make_method, method_cases, tiny_batch, tiny_models

from test_grad_accum import TEXTS, fixed, grads

#: The optimizer step's global micro-batches (row indices of TEXTS): uneven shards, and one of a single row,
#: which leaves rank 1 without rows.
GLOBAL_MICRO = [[0, 1, 2, 3, 4], [5, 6], [7]]
PROCESSES = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(fn, processes: int, *args) -> None:
    """Run ``fn(rank, *args)`` in ``processes`` processes that form a gloo group, as torchrun would set them up."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    mp.spawn(_entry, args=(processes, fn, args), nprocs=processes, join=True)


def _entry(rank: int, processes: int, fn, args) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(processes))
    torch.set_num_threads(1)
    assert distributed.init_from_environment("cpu")
    try:
        fn(rank, *args)
    finally:
        distributed.shutdown()


def _steps_on_shards(rank: int, out_dir: str) -> None:
    from harness.config import DecodeConfig

    student, teacher, layer_map, _ = tiny_models(texts=TEXTS)
    split, _ = tiny_batch(student.tokenizer, TEXTS)
    shards = [make_batch(split, shard_rows(rows, rank, PROCESSES), student.pad_id) for rows in GLOBAL_MICRO]
    sampling = DecodeConfig(num_beams=1, do_sample=True, top_k=5, max_new_tokens=6)
    results = {}
    for case, (name, params) in method_cases().items():
        student.model.zero_grad(set_to_none=True)
        loss, terms = parallel_step(make_method(name, params), student, teacher, shards, sampling, layer_map,
                                    collect=fixed)
        results[case] = {"loss": loss.item(), "terms": {k: v.item() for k, v in terms.items()},
                         "grads": grads(student.model)}
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.fixture(scope="module")
def parallel_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp")
    launch(_steps_on_shards, PROCESSES, str(out))
    return [torch.load(out / f"rank{r}.pt") for r in range(PROCESSES)]


@pytest.fixture(scope="module")
def one_process():
    student, teacher, layer_map, _ = tiny_models(texts=TEXTS)
    _, big = tiny_batch(student.tokenizer, TEXTS)
    return student, teacher, layer_map, big


def test_shards_cover_the_batch_once_in_order():
    rows = list(range(10, 17))
    parts = [shard_rows(rows, r, 3) for r in range(3)]
    assert parts == [[10, 11, 12], [13, 14], [15, 16]]
    assert shard_rows([5], 1, 2) == [] and shard_rows([5], 0, 2) == [5]


@pytest.mark.parametrize("case", method_cases())
def test_two_processes_take_the_step_of_one_process_on_the_whole_batch(parallel_results, one_process, case):
    from harness.config import DecodeConfig

    student, teacher, layer_map, big = one_process
    method = make_method(*method_cases()[case])
    sampling = DecodeConfig(num_beams=1, do_sample=True, top_k=5, max_new_tokens=6)
    student.model.zero_grad(set_to_none=True)
    loss, terms = method_loss(method, student, teacher, big, sampling, layer_map, collect=fixed)
    loss.backward()
    expected = grads(student.model)
    student.model.zero_grad(set_to_none=True)
    for got in parallel_results:    # every rank ends with the global batch's loss and gradients
        got = got[case]
        assert got["loss"] == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)
        assert set(got["terms"]) == set(terms)
        for k in terms:
            assert got["terms"][k] == pytest.approx(terms[k].item(), rel=1e-5, abs=1e-6), k
        assert got["grads"].keys() == expected.keys() and expected
        for n in expected:
            assert torch.allclose(got["grads"][n], expected[n], rtol=1e-5, atol=1e-5), n


def test_the_test_can_fail_a_rank_alone_is_not_the_whole_batch(parallel_results, one_process):
    """Without the summed token counts and gradients a rank's step would be its shard's own: not the big batch's."""
    from harness.config import DecodeConfig

    student, teacher, layer_map, _ = one_process
    split, _ = tiny_batch(student.tokenizer, TEXTS)
    shard = make_batch(split, [r for rows in GLOBAL_MICRO for r in shard_rows(rows, 0, PROCESSES)], student.pad_id)
    with torch.no_grad():
        alone = method_loss(make_method("mle"), student, teacher, shard, DecodeConfig(), layer_map)[0].item()
    assert abs(alone - parallel_results[0]["mle"]["loss"]) > 1e-4


def test_one_process_helpers_change_nothing():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_writer()
    t = torch.tensor([1.5, 2.0])
    assert distributed.all_reduce_sum(t) is t and t.tolist() == [1.5, 2.0]
    assert distributed.sum_floats({"a": 3.0}) == {"a": 3.0}
    distributed.barrier()
    assert not distributed.init_from_environment("cpu")   # no launcher environment: stays one process


# --------------------------------------------------------------------------- the training loop
def _train(student, teacher, method: str, processes: int = 1, **schedule):
    import copy

    from harness.config import TrainConfig
    from harness.train import train

    split, _ = tiny_batch(student.tokenizer, TEXTS)
    lm = copy.copy(student)
    lm.model = copy.deepcopy(student.model)
    cfg = TrainConfig(**{"epochs": 1, "lr": 1e-2, "evals_per_epoch": 0, "max_steps": 2, **schedule})
    result = train(lm, make_method(method), split, cfg, teacher=teacher, seed=3, collect=fixed)
    return lm.model, result


TRAINED = ("mle", "tvd")


def _train_on_shards(rank: int, out_dir: str) -> None:
    student, teacher, _, _ = tiny_models(texts=TEXTS)
    out = {}
    for method in TRAINED:
        model, result = _train(student, teacher, method, batch_size=2)
        out[method] = {"weights": {n: p.detach().clone() for n, p in model.named_parameters()},
                       "steps": result.steps, "processes": result.processes, "rank_seeds": result.rank_seeds,
                       "losses": [r["value"] for r in result.curves if r["name"] == "loss"]}
    torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))


def test_two_processes_at_batch_2_train_as_one_process_at_batch_4(tmp_path):
    launch(_train_on_shards, PROCESSES, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(PROCESSES)]
    student, teacher, _, _ = tiny_models(texts=TEXTS)
    for method in TRAINED:
        big, result = _train(student, teacher, method, batch_size=4)
        losses = [r["value"] for r in result.curves if r["name"] == "loss"]
        assert result.steps == 2 and result.processes == 1
        for got in ranks:
            got = got[method]
            assert got["steps"] == 2 and got["processes"] == 2 and got["rank_seeds"] == [3, 3 + 1_000_003]
            assert got["losses"] == pytest.approx(losses, rel=1e-5), method
            for name, p in big.named_parameters():   # Adam moves each weight by about lr = 1e-2 per step
                assert torch.allclose(got["weights"][name], p, atol=1e-4), (method, name)
        small, _ = _train(student, teacher, method, batch_size=2)   # one shard alone trains otherwise
        assert any(not torch.allclose(small.get_parameter(n), p, atol=1e-4) for n, p in big.named_parameters())


# --------------------------------------------------------------------------- bad input, before any work
def test_more_cuda_processes_than_gpus_is_refused(monkeypatch):
    from harness.errors import HarnessError

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(HarnessError, match="--processes 2 on CUDA, but this machine has 1 GPU"):
        distributed.check_processes(2, "cuda")
    with pytest.raises(HarnessError, match="give --device cuda, each process takes the GPU of its local rank"):
        distributed.check_processes(2, "cuda:0")
    assert distributed.check_processes(1, "cuda") == 1
    assert distributed.check_processes(4, "cpu") == 4


def test_processes_beside_a_launcher_must_agree(monkeypatch):
    from harness.errors import HarnessError

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.check_processes(None, "cpu") == 2 and distributed.check_processes(2, "cpu") == 2
    with pytest.raises(HarnessError, match="--processes 3 but the launcher started 2"):
        distributed.check_processes(3, "cpu")


def test_a_process_group_without_its_address_is_one_line(monkeypatch):
    from harness.errors import HarnessError

    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(HarnessError, match="RANK, MASTER_ADDR, MASTER_PORT not set"):
        distributed.init_from_environment("cpu")


def test_processes_are_keyed_into_training_stages_and_the_run_id_only_above_one():
    import dataclasses

    from harness.config import resolve_config
    from harness.pipeline.graph import plan_for, run_id

    one = resolve_config("dart", "tvd", "ci", None, [])
    two = dataclasses.replace(one, processes=2)
    plan_one, plan_two = plan_for(one), plan_for(two)
    trains = {"teacher", "student"}
    for a, b in zip(plan_one.specs, plan_two.specs):
        assert "processes" not in a.config
        assert (b.config.get("processes") == 2) is (b.stage in trains), b.label
        assert (a.key != b.key) is (b.stage != "tokenizer"), b.label   # everything downstream of the teacher moves
    assert {s.stage for s in plan_one.specs if s.stage in trains} == trains
    assert run_id(one) != run_id(two)


# --------------------------------------------------------------------------- a killed rank, then the same command
class Killed(RuntimeError):
    pass


def _train_with_checkpoints(rank: int, out_dir: str, kill_at_collect: int | None) -> None:
    """tvd with real online samples (each rank's own stream), 4 steps, a checkpoint after each; rank 1 dies
    during step 3 when asked."""
    import copy
    from pathlib import Path

    from harness.config import DecodeConfig, TrainConfig
    from harness.step import collect_prefix
    from harness.store.checkpoints import TrainingCheckpoints
    from harness.train import train

    calls = []

    def collect(*args, **kwargs):
        calls.append(1)
        if rank == 1 and kill_at_collect is not None and len(calls) == kill_at_collect:
            raise Killed("rank 1 killed")
        return collect_prefix(*args, **kwargs)

    student, teacher, _, _ = tiny_models(texts=TEXTS)
    split, _ = tiny_batch(student.tokenizer, TEXTS)
    lm = copy.copy(student)
    lm.model = copy.deepcopy(student.model)
    cfg = TrainConfig(epochs=2, lr=1e-2, evals_per_epoch=0, batch_size=2)
    checkpoints = TrainingCheckpoints(Path(out_dir) / "checkpoints", 1)
    result = train(lm, make_method("tvd"), split, cfg, teacher=teacher, seed=3, collect=collect,
                   sampling=DecodeConfig(num_beams=1, do_sample=True, top_k=5, max_new_tokens=6),
                   checkpoints=checkpoints)
    torch.save({"weights": {n: p.detach().clone() for n, p in lm.model.named_parameters()},
                "losses": [r["value"] for r in result.curves if r["name"] == "loss"],
                "resumed_from": result.resumed_from, "steps": result.steps},
               os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.mark.slow
def test_a_killed_rank_stops_the_training_and_the_same_run_resumes_to_the_same_numbers(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir(), cut.mkdir()
    launch(_train_with_checkpoints, PROCESSES, str(whole), None)
    with pytest.raises(Exception, match="rank 1 killed"):   # during step 3 (2 collect calls a step): rank 0 stopped too
        launch(_train_with_checkpoints, PROCESSES, str(cut), 5)
    assert not (cut / "rank0.pt").exists()
    launch(_train_with_checkpoints, PROCESSES, str(cut), None)
    for r in range(PROCESSES):
        a, b = torch.load(whole / f"rank{r}.pt"), torch.load(cut / f"rank{r}.pt")
        assert a["resumed_from"] is None and b["resumed_from"] == 2 and a["steps"] == b["steps"] == 4
        assert a["losses"] == b["losses"]                          # the curve went on from the checkpoint's rows
        for name, p in a["weights"].items():
            assert torch.equal(p, b["weights"][name]), (r, name)   # bit for bit on CPU


# --------------------------------------------------------------------------- the command line
def _run_cli(args: list[str], cwd) -> "subprocess.CompletedProcess":
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in distributed.LAUNCH_VARIABLES}
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", "--task", "dart", "--profile", "ci",
                           "--device", "cpu", "--threads", "1", "--processes", "2",
                           "--results-dir", str(cwd / "results"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_run_on_two_processes_finishes_and_writes_its_run_once(tmp_path):
    import json

    proc = _run_cli(["--method", "tvd"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("results: ") == 1 and proc.stdout.count("test split") == 1   # rank 0 reports
    runs = list((tmp_path / "results" / "runs").iterdir())
    assert len(runs) == 1
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["config"]["processes"] == 2
    trained = [json.loads(p.read_text()) for stage in ("teacher", "student")
               for p in (tmp_path / "results" / "cache" / stage).glob("*/stage.json")]
    assert len(trained) == 3     # teacher, pre-distilled student, tvd student: each built once
    for record in trained:
        assert record["config"]["processes"] == 2 and record["info"]["processes"] == 2
        assert len(set(record["info"]["rank_seeds"])) == 2


@pytest.mark.slow
def test_a_killed_rank_stops_the_cell_with_one_line(tmp_path):
    plugin = tmp_path / "dies.py"
    plugin.write_text(
        "import os\n"
        "from harness import register_method\n"
        "from harness.methods.baselines import MLE\n\n"
        "@register_method('dies_on_rank_1')\n"
        "class Dies(MLE):\n"
        "    '''MLE whose rank 1 dies at its first step.'''\n\n"
        "    def token_loss(self, *args, **kwargs):\n"
        "        if os.environ.get('RANK') == '1':\n"
        "            os._exit(9)\n"
        "        return super().token_loss(*args, **kwargs)\n")
    proc = _run_cli(["--method", "dies_on_rank_1", "--plugins", str(plugin)], tmp_path)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("harness: error: ")]
    assert errors == ["harness: error: training process 1 of 2 failed (exit code 9); the others were stopped; "
                      "the same command resumes from the last checkpoint"], proc.stderr[-3000:]
    assert not (tmp_path / "results" / "runs").exists()

"""Data-parallel training: two gloo processes on CPU, each with its shard of every global batch, take the step
of one process on the whole batch — the same loss, terms and gradients (1e-5) for every registered method and
variant — and decode their shares of the batches into one process's outputs (greedy and beam exactly; sampled from
each rank's recorded seed); in one process the helpers change nothing.

Cost: the checks of two ranks share one forked process group (:func:`two_ranks`), and the slow end-to-end runs
share one ``harness run --processes 2`` (:func:`cli_run`)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from conftest import CI_GRID_SET_ARGS, CI_GRID_SETS

from harness import distributed
from harness.data import make_batch, shard_rows
from harness.step import method_loss
from harness.step.accumulate import parallel_step
from harness.testing import (BATCH_TEXTS, fixed_collect, gradients, make_method, method_cases, one_batch_step,
                             tiny_batch, tiny_models)

#: The optimizer step's global micro-batches (row indices of TEXTS): uneven shards, and one of a single row,
#: which leaves rank 1 without rows.
GLOBAL_MICRO = [[0, 1, 2, 3, 4], [5, 6], [7]]
PROCESSES = 2
TEXTS = BATCH_TEXTS
#: every test of this module on one xdist worker: they share one two-process session (:func:`two_ranks`)
pytestmark = pytest.mark.xdist_group("data_parallel")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(fn, processes: int, *args) -> None:
    """Run ``fn(rank, *args)`` in ``processes`` processes that form a gloo group, as torchrun would set them up.
    They are forked (as a DataLoader's workers, one torch thread each): a spawned process would spend most of
    this module's time importing torch and transformers again. Spawned where this process has initialised CUDA
    (on a GPU machine, an earlier test of the worker ran there): a forked child cannot use CUDA then, and fails
    ("CUDA error: initialization error") at the first call that touches it, the optimizer's step among them."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    method = "spawn" if torch.cuda.is_initialized() else "fork"
    mp.start_processes(_entry, args=(processes, fn, args), nprocs=processes, join=True, start_method=method)


def _entry(rank: int, processes: int, fn, args) -> None:
    from accelerate.state import AcceleratorState

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(processes))
    torch.set_num_threads(1)
    AcceleratorState._reset_state(reset_partial_state=True)   # forked: the one-process state of this test process
    assert distributed.init_from_environment("cpu")
    try:
        fn(rank, *args)
    finally:
        distributed.shutdown()


STEP_SAMPLING = dict(num_beams=1, do_sample=True, top_k=5, max_new_tokens=6)


def _rank_session(rank: int, out_dir: str) -> None:
    """Everything this module checks of two ranks, in one process group (its start-up is most of the cost):
    the step of every method on shards, the training loop at batch 2 (validating on decoded outputs), the split
    decoding and scoring, and an uninterrupted checkpointed run for the kill-and-resume test."""
    from pathlib import Path

    torch.save({"steps": _steps_on_shards(rank), "train": _train_on_shards(), "decode": _decode_on_ranks()},
               os.path.join(out_dir, f"rank{rank}.pt"))
    whole = Path(out_dir) / "whole"
    whole.mkdir(exist_ok=True)
    _train_with_checkpoints(rank, str(whole), None)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, one_process):
    """(one_process first: the forked ranks find transformers' models imported already)"""
    out = tmp_path_factory.mktemp("dp")
    launch(_rank_session, PROCESSES, str(out))
    return out


@pytest.fixture(scope="module")
def rank_results(two_ranks):
    return [torch.load(two_ranks / f"rank{r}.pt") for r in range(PROCESSES)]


def _steps_on_shards(rank: int) -> dict:
    from harness.config import DecodeConfig

    student, teacher, layer_map, _ = tiny_models(texts=TEXTS)
    split, _ = tiny_batch(student.tokenizer, TEXTS)
    shards = [make_batch(split, shard_rows(rows, rank, PROCESSES), student.pad_id) for rows in GLOBAL_MICRO]
    sampling = DecodeConfig(**STEP_SAMPLING)
    results = {}
    for case, (name, params) in method_cases().items():
        student.model.zero_grad(set_to_none=True)
        loss, terms = parallel_step(make_method(name, params), student, teacher, shards, sampling, layer_map,
                                    collect=fixed_collect)
        results[case] = {"loss": loss.item(), "terms": {k: v.item() for k, v in terms.items()},
                         "grads": gradients(student.model)}
    return results


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
def test_two_processes_take_the_step_of_one_process_on_the_whole_batch(rank_results, one_process, case):
    from harness.config import DecodeConfig

    student, teacher, layer_map, big = one_process
    method = make_method(*method_cases()[case])
    loss, terms, expected = one_batch_step(method, student, teacher, big, DecodeConfig(**STEP_SAMPLING), layer_map)
    for got in rank_results:    # every rank ends with the global batch's loss and gradients
        got = got["steps"][case]
        assert got["loss"] == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)
        assert set(got["terms"]) == set(terms)
        for k in terms:
            assert got["terms"][k] == pytest.approx(terms[k].item(), rel=1e-5, abs=1e-6), k
        assert got["grads"].keys() == expected.keys() and expected
        for n in expected:
            assert torch.allclose(got["grads"][n], expected[n], rtol=1e-5, atol=1e-5), n


def test_the_test_can_fail_a_rank_alone_is_not_the_whole_batch(rank_results, one_process):
    """Without the summed token counts and gradients a rank's step would be its shard's own: not the big batch's."""
    from harness.config import DecodeConfig

    student, teacher, layer_map, _ = one_process
    split, _ = tiny_batch(student.tokenizer, TEXTS)
    shard = make_batch(split, [r for rows in GLOBAL_MICRO for r in shard_rows(rows, 0, PROCESSES)], student.pad_id)
    with torch.no_grad():
        alone = method_loss(make_method("mle"), student, teacher, shard, DecodeConfig(), layer_map)[0].item()
    assert abs(alone - rank_results[0]["steps"]["mle"]["loss"]) > 1e-4


def test_one_process_helpers_change_nothing():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_writer()
    t = torch.tensor([1.5, 2.0])
    assert distributed.all_reduce_sum(t) is t and t.tolist() == [1.5, 2.0]
    assert distributed.sum_floats({"a": 3.0}) == {"a": 3.0}
    distributed.barrier()
    assert not distributed.init_from_environment("cpu")   # no launcher environment: stays one process


# --------------------------------------------------------------------------- the training loop
def _validate(lm) -> float:
    """A score of the decoded training rows (greedy, 3 inputs a batch): data parallel, a collective."""
    from harness import evaluate as ev
    from harness.config import DecodeConfig

    split, _ = tiny_batch(lm.tokenizer, TEXTS)
    outputs = ev.decode(lm, split, DecodeConfig(max_new_tokens=6, batch_size=3), "cpu")
    return float(sum((i + 1) * (t % 7) for i, o in enumerate(outputs) for t in o))


def _train(student, teacher, method: str, **schedule):
    import copy

    from harness.config import TrainConfig
    from harness.train import train

    split, _ = tiny_batch(student.tokenizer, TEXTS)
    lm = copy.copy(student)
    lm.model = copy.deepcopy(student.model)
    cfg = TrainConfig(**{"epochs": 1, "lr": 1e-2, "evals_per_epoch": 2, "max_steps": 2, **schedule})
    result = train(lm, make_method(method), split, cfg, teacher=teacher, seed=3, collect=fixed_collect,
                   validate=_validate)
    return lm.model, result


TRAINED = ("mle", "tvd")


def _train_on_shards() -> dict:
    student, teacher, _, _ = tiny_models(texts=TEXTS)
    out = {}
    for method in TRAINED:
        model, result = _train(student, teacher, method, batch_size=2)
        out[method] = {"weights": {n: p.detach().clone() for n, p in model.named_parameters()},
                       "steps": result.steps, "processes": result.processes, "rank_seeds": result.rank_seeds,
                       "best_step": result.best_step, "curves": result.curves}
    return out


def test_two_processes_at_batch_2_train_as_one_process_at_batch_4(rank_results):
    student, teacher, _, _ = tiny_models(texts=TEXTS)
    for method in TRAINED:
        big, result = _train(student, teacher, method, batch_size=4)
        assert result.steps == 2 and result.processes == 1
        validation = [r["value"] for r in result.curves if r["split"] == "validation"]
        assert len(validation) == 2
        for got in rank_results:
            got = got["train"][method]
            assert got["steps"] == 2 and got["processes"] == 2 and got["rank_seeds"] == [3, 3 + 1_000_003]
            assert [(r["name"], r["step"]) for r in got["curves"]] == [(r["name"], r["step"]) for r in result.curves]
            assert [r["value"] for r in got["curves"]] == pytest.approx([r["value"] for r in result.curves],
                                                                         rel=1e-5), method
            assert got["best_step"] == result.best_step
            for name, p in big.named_parameters():   # Adam moves each weight by about lr = 1e-2 per step
                assert torch.allclose(got["weights"][name], p, atol=1e-4), (method, name)
        small, _ = _train(student, teacher, method, batch_size=2)   # one shard alone trains otherwise
        assert any(not torch.allclose(small.get_parameter(n), p, atol=1e-4) for n, p in big.named_parameters())


# --------------------------------------------------------------------------- decoding split over the ranks
DECODES = {"greedy": dict(max_new_tokens=6, batch_size=3), "beam": dict(num_beams=3, max_new_tokens=6, batch_size=3),
           "sampled": dict(do_sample=True, top_k=5, max_new_tokens=6, batch_size=3)}
SAMPLE_SEED = 7


def _decode_on_ranks() -> dict:
    """The student's decodings of the 8 rows (3 batches of 3, 3, 2), with the batches each rank generated, and the
    scores of its greedy outputs."""
    from harness import evaluate as ev
    from harness.config import DecodeConfig

    student, teacher, _, _ = tiny_models(texts=TEXTS)
    split, _ = tiny_batch(teacher.tokenizer, TEXTS)
    generated = []
    generate = student.generate

    def counted(*args, **kwargs):
        generated.append(1)
        return generate(*args, **kwargs)

    student.generate = counted
    out = {}
    for name, cfg in DECODES.items():
        torch.manual_seed(SAMPLE_SEED)
        generated.clear()
        out[name] = {"outputs": ev.decode(student, split, DecodeConfig(**cfg), "cpu"), "batches": len(generated),
                     "stream_after": torch.rand(()).item()}
    greedy = out["greedy"]["outputs"]
    out["nll"] = ev.sequence_nll(student, split, greedy, "cpu", batch_size=3)
    out["teacher_scores"] = ev.teacher_scores(teacher, student, split, greedy, "cpu", batch_size=3)
    out["sampling_rank_seeds"] = ev.sampling_rank_seeds(SAMPLE_SEED)
    return out


def test_decoding_is_split_over_the_ranks_and_gathered_as_one_process_decodes(rank_results, one_process):
    from harness import evaluate as ev
    from harness.config import DecodeConfig

    student, teacher, _, _ = one_process
    split, _ = tiny_batch(teacher.tokenizer, TEXTS)
    assert ev.sampling_rank_seeds(SAMPLE_SEED) == []     # one process: the caller's stream is the draw
    for name in ("greedy", "beam"):
        expected = ev.decode(student, split, DecodeConfig(**DECODES[name]), "cpu")
        assert len({tuple(o) for o in expected}) > 4     # outputs that tell the rows apart
        for rank, got in enumerate(rank_results):
            assert got["decode"][name]["outputs"] == expected, (name, rank)     # exactly, in the examples' order
            assert got["decode"][name]["batches"] == (2 if rank == 0 else 1)   # batches 0 and 2, batch 1
    greedy = rank_results[0]["decode"]["greedy"]["outputs"]
    nll = ev.sequence_nll(student, split, greedy, "cpu", batch_size=3)
    scores = ev.teacher_scores(teacher, student, split, greedy, "cpu", batch_size=3)
    flat = [x for pairs in (nll, *scores) for pair in pairs for x in pair]
    for got in rank_results:    # (float sums: equal up to this process's thread count)
        assert [x for pairs in (got["decode"]["nll"], *got["decode"]["teacher_scores"]) for pair in pairs
                for x in pair] == pytest.approx(flat, rel=1e-6)


def test_sampled_decoding_draws_each_ranks_batches_from_its_recorded_seed(rank_results, one_process):
    from harness import distributed
    from harness import evaluate as ev
    from harness.config import DecodeConfig
    from harness.data import batches

    student, _, _, _ = one_process
    split, _ = tiny_batch(student.tokenizer, TEXTS)
    seeds = rank_results[0]["decode"]["sampling_rank_seeds"]
    assert seeds == [distributed.rank_seed(SAMPLE_SEED, r) for r in range(PROCESSES)] == [7, 7 + 1_000_003]
    cfg = DecodeConfig(**DECODES["sampled"])
    expected: list = [None] * len(split)
    for rank, seed in enumerate(seeds):
        torch.manual_seed(seed)
        mine = list(batches(split, cfg.batch_size, student.pad_id, by_length=True))[rank::PROCESSES]
        for i, tokens in enumerate(ev._decode_batches(student, mine, len(split), cfg, "cpu", "decode", len(mine))):
            if tokens is not None:
                expected[i] = tokens
    torch.manual_seed(SAMPLE_SEED)
    stream_after = torch.rand(()).item()    # the caller's stream: where the seed left it, not moved by the draw
    for got in rank_results:
        assert got["decode"]["sampled"]["outputs"] == expected
        assert got["decode"]["sampled"]["stream_after"] == stream_after


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
def test_a_killed_rank_stops_the_training_and_the_same_run_resumes_to_the_same_numbers(two_ranks, tmp_path):
    whole, cut = two_ranks / "whole", tmp_path / "cut"    # (the uninterrupted run: in the module's session)
    cut.mkdir()
    # rank 1 dies during step 3 (2 collect calls a step); rank 0's next collective fails: whichever is reported first
    with pytest.raises(Exception, match="rank 1 killed|[Cc]onnection|gloo"):
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
                           *CI_GRID_SET_ARGS, "--device", "cpu", "--threads", "1", "--processes", "2",
                           "--results-dir", str(cwd / "results"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``harness run --task dart --method tvd --profile ci --processes 2`` once (at the ci grid's small splits: what
    is tested is the processes, not the sizes); its results folder is reused by
    the killed-rank test (whose teacher, pseudo-labels and pre-distilled student are then in the cache)."""
    folder = tmp_path_factory.mktemp("cli")
    return folder, _run_cli(["--method", "tvd"], folder)


@pytest.mark.slow
def test_run_on_two_processes_finishes_and_writes_its_run_once(cli_run):
    import json

    import pandas as pd

    tmp_path, proc = cli_run
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
    evaluations = list((tmp_path / "results" / "cache" / "evaluation").glob("*/stage.json"))
    assert len(evaluations) == 3
    for path in evaluations:
        record = json.loads(path.read_text())    # decoded by both ranks; the seeds of their samples recorded
        assert record["info"]["processes"] == 2 and len(record["info"]["sampling_rank_seeds"]["risk_samples"]) == 2
        outputs = pd.read_parquet(path.parent / "examples.parquet")["output_tokens"]
        generated = record["compute"]["teacher_generated_tokens"] + record["compute"]["student_generated_tokens"]
        assert generated >= sum(len(o) for o in outputs)     # both ranks' tokens (rank 0's alone are about half)


@pytest.mark.slow
def test_a_killed_rank_stops_the_cell_with_one_line(cli_run, tmp_path):
    folder, _ = cli_run
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
    runs = sorted((folder / "results" / "runs").iterdir())
    proc = _run_cli(["--method", "dies_on_rank_1", "--plugins", str(plugin)], folder)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("harness: error: ")]
    assert errors == ["harness: error: training process 1 of 2 failed (exit code 9); the others were stopped; "
                      "the same command resumes from the last checkpoint"], proc.stderr[-3000:]
    assert sorted((folder / "results" / "runs").iterdir()) == runs     # no run written


@pytest.mark.slow
def test_a_grid_cell_runs_on_two_processes(cli_run, tmp_path):
    """``harness grid --processes 2``'s path: the cell's two ranks started by the grid (its lock held), rank 0
    writing the run (the cache of the two-process run copied: every stage is reused)."""
    import json
    import shutil

    from harness.grid import expand, load_spec, run_grid, with_overrides

    folder, proc = cli_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.copytree(folder / "results" / "cache", tmp_path / "cache")
    grid = with_overrides(load_spec("table2"), tasks="dart", methods="tvd", seeds="42").for_profile("ci")
    cells = expand(grid, str(tmp_path), [*CI_GRID_SETS.items(), ("device", "cpu")], (), 2)
    report = run_grid(cells, "table2", "ci", echo=lambda line: None)
    assert [o.status for o in report.outcomes.values()] == ["ran"], report.summary()
    outcome = report.outcomes[cells[0].run_id]
    assert outcome.built == () and "method" in outcome.reused      # rank 0's outcome: what the cell reused
    manifest = json.loads((tmp_path / "runs" / cells[0].run_id / "manifest.json").read_text())
    assert manifest["config"]["processes"] == 2

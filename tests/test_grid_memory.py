"""The dry run's memory model and wall-clock: sizes by hand, the estimate against measured peaks, the schedule."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from harness import bench
from harness.config import ModelConfig
from harness.grid.cost import PAPER_MODELS, Architecture, architecture_of
from harness.grid.memory import KD_LOGIT_COPIES, MLE_LOGIT_COPIES, StepShape, activation_elements, step_memory
from harness.grid.schedule import Node, stage_graph, wall_clock
from harness.lm import build_model, count_parameters


# ---------------------------------------------------------------- memory

def test_step_memory_by_hand():
    student = Architecture("bart", 2, 4, 10, 3, 1, 1)     # an encoder layer 54, a decoder layer 82, head 20
    teacher = student.with_depth(2, 2)
    assert (student.parameters(), teacher.parameters()) == (54 + 82 + 20 + 2 * 3 * 2, 108 + 164 + 20 + 12)
    shape = StepShape(batch=3, source_tokens=5, target_tokens=4, prefix_sets=2, uses_teacher=True)
    # per token and layer 8·2 + 2·4 = 24; the decoder adds 4·2 per target token and 2·2 per source token
    encoder = 3 * 5 * (24 + 2)
    decoder = 2 * 3 * (4 * ((24 + 8) + 2) + 5 * 4)
    assert activation_elements(student, shape) == encoder + decoder == 1_326
    m = step_memory(student, teacher, shape)
    assert m.weights == 4 * (168 + 304) and m.gradients == 4 * 168 and m.optimizer == 8 * 168
    assert m.activations == 4 * 1_326 and m.logits == KD_LOGIT_COPIES * 2 * 3 * 4 * 10 * 4
    assert m.total == m.parameters + m.activations + m.logits
    half = step_memory(student, teacher, shape, "bf16")
    assert half.activations == m.activations / 2 and half.logits == m.logits and half.weight_copies == m.weights / 2
    # the teacher fine-tuned alone: no frozen model, MLE's logits; Adafactor keeps no per-parameter moments
    alone = step_memory(teacher, None, StepShape(3, 5, 4, 1, False), optimizer="adafactor")
    assert alone.weights == 4 * 304 and alone.optimizer == 0 and alone.logits == MLE_LOGIT_COPIES * 3 * 4 * 10 * 4
    frozen = step_memory(student, teacher, shape, frozen_embeddings=True)
    assert frozen.gradients == 4 * (168 - 20 - 12)
    with pytest.raises(ValueError, match="precision"):
        step_memory(student, teacher, shape, "fp8")


def test_eager_attention_keeps_the_score_matrices():
    model = Architecture("gpt2", 2, 4, 10, 8, 0, 1, heads=2)
    shape = StepShape(1, 3, 2, 1, False)
    assert activation_elements(model, shape, "eager") - activation_elements(model, shape) == 2 * 5 * 5


@pytest.mark.parametrize("family, layers", [("bart", (2, 2)), ("t5", (2, 2)), ("gpt2", (0, 2))])
def test_a_built_model_has_its_architectures_size(family, layers):
    cfg = ModelConfig(family=family, d_model=64, heads=4, ffn_dim=128, encoder_layers=layers[0],
                      decoder_layers=layers[1], max_positions=40)
    built = count_parameters(build_model(cfg, bench.SyntheticVocab(300)))
    # T5's relative attention bias (32 buckets × heads, first layer of each stack) and final norms are not counted
    assert architecture_of(cfg, 300).parameters() == pytest.approx(built, rel=0.01)


def test_the_paper_models_rebuild_from_their_architecture():
    for arch in PAPER_MODELS.values():
        assert architecture_of(arch.model_config(), arch.vocab) == arch


@pytest.mark.parametrize("method", ["mle", "kl", "tvd", "js"])
def test_the_estimate_is_within_a_third_of_the_measured_peak(method):
    """On CPU (PyTorch's attention keeps its scores: eager), the profiler's peak of one step against the estimate
    of the same thing (gradients, activations, logits). Measured 0.8-1.3× on dart-like and xsum-like shapes."""
    cfg = bench.resolve_bench_config("dart-like", [("batch_size", "8"), ("teacher.family", "bart"),
                                                   ("vocab_size", "4000"), ("threads", "1")])
    threads = torch.get_num_threads()
    try:
        m = bench.make_method(method, "dart")
        setup = bench.make_setup(cfg, [m])
        measured, _ = bench.peak_memory_mib(setup, "fast", m, 0)
    finally:
        torch.set_num_threads(threads)
    estimated = bench.bench_memory(cfg, m, "cpu").step / 2 ** 20
    assert 1 / 1.5 < estimated / measured < 1.5, (estimated, measured)


# ---------------------------------------------------------------- wall-clock

def graph():
    # a → b, c and d alone: the longest chain a, b (5 h), 10 GPU-hours in all
    return {"a": Node("t/a", 2.0), "b": Node("t/b", 3.0, {"a"}), "c": Node("t/c", 4.0), "d": Node("t/d", 1.0)}


def test_wall_clock_by_hand():
    one, two, many = (wall_clock(graph(), p) for p in (1, 2, 32))
    assert (one.total, one.chain, one.bound, one.scheduled) == (10.0, 5.0, 10.0, 10.0)
    # two GPUs: a and c at 0, b after a (2-5), d after c (4-5)
    assert (two.bound, two.scheduled) == (5.0, 5.0)
    assert (many.spread, many.bound, many.scheduled) == (10 / 32, 5.0, 5.0)
    assert one.path == ("t/a 2.0 h", "t/b 3.0 h")
    # two GPUs per stage at 50%: as fast per stage, half the slots
    assert wall_clock(graph(), 4, gpus_per_stage=2, efficiency=0.5).scheduled == 5.0
    with pytest.raises(ValueError):
        wall_clock(graph(), 2, gpus_per_stage=4)


def test_the_schedule_waits_for_what_a_stage_reads():
    nodes = {"a": Node("a", 1.0), "b": Node("b", 1.0, {"a"}), "c": Node("c", 1.0, {"b"})}
    assert wall_clock(nodes, 8).scheduled == 3.0 and wall_clock(nodes, 1).scheduled == 3.0


def test_the_stage_graph_of_a_grid_links_shared_stages(tmp_path):
    from harness.grid import expand, load_spec, plan_grid, with_overrides
    from harness.grid.cost import estimate_grid

    spec = with_overrides(load_spec("table2"), tasks="dart", methods="js,tvd", seeds="42")
    plans = plan_grid(expand(spec.for_profile("paper"), str(tmp_path), []))
    nodes = stage_graph(plans, estimate_grid(plans))
    labels = {n.label: key for key, n in nodes.items()}
    js, tvd, predistill = labels["dart/js"], labels["dart/tvd"], labels["dart/predistill"]
    assert predistill in nodes[js].needs and predistill in nodes[tvd].needs   # built once, read by both
    assert labels["dart/teacher"] in nodes[predistill].needs
    eight = wall_clock(nodes, 8)
    assert eight.chain <= eight.scheduled < wall_clock(nodes, 1).scheduled


def test_paper_dry_run_prints_wall_clock_and_memory(tmp_path):
    from harness.cli import cli

    result = CliRunner().invoke(cli, ["grid", "table2", "--profile", "paper", "--tasks", "xsum",
                                      "--methods", "mle,predistill,js", "--results-dir", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("wall-clock on P GPUs")))
    assert [line.split()[0] for line in lines[start + 2:start + 5]] == ["1", "8", "32"]
    assert any(line.startswith("longest chain: xsum/") for line in lines)
    memory = next(i for i, line in enumerate(lines) if line.startswith("peak memory per process"))
    rows = {line.split()[1]: line.split() for line in lines[memory + 2:] if line.startswith("xsum ")}
    assert {"predistill", "js"} <= set(rows) and "teacher" not in rows   # XSum's teacher is not fine-tuned
    assert rows["js"][2] == "8×1024×64×2"   # the recipe's batch, longest source, online sample, two prefix sets

"""What a grid costs: parameter counts, FLOPs of a stage by hand, GPU-hours in the paper dry run."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from harness.config import DecodeConfig, ModelConfig, RunConfig, StudentConfig, TokenizerConfig, TrainConfig
from harness.grid import expand, load_spec, plan_grid, with_overrides
from harness.grid.cost import (PAPER_MODELS, Architecture, Flops, Throughput, estimate_grid, generate, remaining,
                               stage_flops, student_architecture, teacher_architecture)
from harness.methods.base import Method
from harness.paper.data import DataStats


@pytest.mark.parametrize("model, millions", [("facebook/bart-large", 406), ("google-t5/t5-base", 223),
                                             ("microsoft/DialoGPT-medium", 355)])
def test_the_formula_gives_the_paper_models_published_sizes(model, millions):
    assert PAPER_MODELS[model].parameters() / 1e6 == pytest.approx(millions, rel=0.005)


def test_a_student_is_the_teacher_with_fewer_layers():
    cfg = replace(RunConfig(), teacher=ModelConfig(family="bart", pretrained="facebook/bart-large"),
                  student=StudentConfig(encoder_layers=3, decoder_layers=1))
    student = student_architecture(cfg, teacher_architecture(cfg))
    # by hand, bart-large widths: an encoder layer 12,596,224, a decoder layer 16,796,672, the tied
    # embeddings 50,265 × 1,024, two stacks of 1,026 × 1,024 learned positions
    assert student.parameters() == 3 * 12_596_224 + 16_796_672 + 50_265 * 1_024 + 2 * 1_026 * 1_024


class TwoPrefixes(Method):
    """Ground truth and student samples, with teacher logits: two prefix sets, one generated online."""

    name = "two_prefixes"
    prefixes = {"ground_truth": 0.5, "student_sample": 0.5}
    uses_teacher = True


def test_stage_flops_of_a_small_cell_by_hand():
    cfg = replace(RunConfig(), tokenizer=TokenizerConfig(vocab_size=10),
                  teacher=ModelConfig(family="bart", d_model=2, ffn_dim=4, encoder_layers=2, decoder_layers=2),
                  student=StudentConfig(encoder_layers=1, decoder_layers=1),
                  online_sampling=DecodeConfig(num_beams=3), selection_decode=DecodeConfig(num_beams=2))
    data = DataStats(train_rows=10, train_inputs=5, validation=4, test=6, source_tokens=3, target_tokens=2)
    spec = SimpleNamespace(stage="student", method=TwoPrefixes(), schedule=TrainConfig(epochs=2, evals_per_epoch=1.5),
                           config={"rows": "per_source"}, model="two_prefixes")
    # d 2, ffn 4: an encoder layer 4·(4+2) + (8+4) + (8+2) + 2·4 = 54, a decoder layer 54 + 4·6 + 4 = 82,
    # the head 10·2 = 20. Teacher: 108 per source token, 2·82 + 20 = 184 per target token;
    # student: 54 and 82 + 20 = 102.
    teacher_forward = 2 * (108 * 3 + 184 * 2)                 # 1,384
    student_forward = 2 * (54 * 3 + 102 * 2)                  # 732
    sample = 2 * (54 * 3 + 102 * 2 * 3)                       # the encoder once, 3 beams of 2 tokens: 1,548
    validate = 2 * (54 * 3 + 102 * 2 * 2)                     # 2 beams: 1,140
    rows = 5 * 2                                              # per source, 2 epochs
    expected = Flops(dense=rows * 2 * (3 * student_forward + teacher_forward),
                     decode=rows * sample + 2 * 1.5 * 4 * validate)
    assert stage_flops(cfg, spec, data) == expected == Flops(71_600, 29_160)


def test_throughput_turns_flops_into_hours():
    assert Throughput("t", 2.0, 1.0).hours(Flops(dense=2 * 3600, decode=3600)) == 2.0


def test_a_resumed_stage_costs_the_steps_it_has_left():
    assert remaining(SimpleNamespace(state="resume", progress={"step": 25, "total": 100})) == 0.75
    assert remaining(SimpleNamespace(state="build", progress=None)) == 1.0


def test_outputs_are_as_long_as_the_mean_target_within_the_decoding_bounds():
    model = Architecture("gpt2", 2, 4, 10, 2, 0, 1)       # 54 + 20 parameters a token passes through
    data = DataStats(1, 1, 1, 1, source_tokens=5, target_tokens=30)
    assert generate(model, data, DecodeConfig(num_beams=2, max_new_tokens=8)) == 2 * 74 * (5 * 2 + 8 * 2)
    assert generate(model, data, DecodeConfig(min_new_tokens=40, max_new_tokens=64)) == 2 * 74 * (5 + 40)


def test_a_stage_shared_by_cells_is_counted_once(tmp_path):
    spec = with_overrides(load_spec("table2"), tasks="dart", methods="js,tvd", seeds="42")
    cells = expand(spec.for_profile("ci"), str(tmp_path), [])
    costs = estimate_grid(plan_grid(cells))
    first, second = (costs[n] for n in sorted(costs))
    assert {"teacher", "pseudo_labels", "predistill"} <= set(first.stages)
    assert set(second.stages) == {"tvd", "evaluation/tvd"} and second.hours == pytest.approx(sum(second.stages.values()))
    assert first.hours > first.stages["teacher"] > 0


def test_paper_dry_run_prints_hours_per_cell_and_in_total(tmp_path):
    from harness.cli import cli

    result = CliRunner().invoke(cli, ["grid", "table2", "--profile", "paper", "--tasks", "dart,wmt16_en_ro",
                                      "--methods", "mle,seqkd,js", "--results-dir", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum(line.strip().startswith("gpu-h  ") for line in lines) == 6
    assert "teacher " in next(line for line in lines if line.strip().startswith("gpu-h"))
    total = next(line for line in lines if line.startswith("estimated GPU-hours to build: "))
    assert "(dart " in total and ", wmt16_en_ro " in total
    assert any(line.startswith("assumptions: one A100") for line in lines)
    assert not any(tmp_path.iterdir())


def test_other_profiles_print_no_estimate(tmp_path):
    from harness.cli import cli

    result = CliRunner().invoke(cli, ["grid", "figure2", "--profile", "ci", "--methods", "js",
                                      "--results-dir", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "gpu-h" not in result.output and "GPU-hours" not in result.output


def test_an_unknown_pretrained_model_is_named_not_guessed(tmp_path):
    spec = with_overrides(load_spec("table2"), tasks="dart", methods="js", seeds="42")
    cells = expand(spec.for_profile("ci"), str(tmp_path), [("teacher.pretrained", "someone/other-model")])
    costs = estimate_grid(plan_grid(cells))
    assert "'someone/other-model' is not known" in next(iter(costs.values())).unknown
